-- Remote processing: the durable job queue, its files, its audit trail and GPU usage.
-- Postgres is the source of truth; Redis/Celery (when used) only carries job ids as wake-ups.
-- Users may read their own rows; only the backend and workers (owner / service_role) write.

CREATE TABLE public.jobs (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (char_length(kind) BETWEEN 1 AND 64),
    params           jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(params) = 'object'),
    status           text NOT NULL DEFAULT 'QUEUED'
                     CHECK (status IN ('QUEUED', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELED')),
    priority         integer NOT NULL DEFAULT 100,
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after        timestamptz NOT NULL DEFAULT now(),
    lease_token      uuid,
    lease_expires_at timestamptz,
    worker_id        text,
    heartbeat_at     timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    progress         real NOT NULL DEFAULT 0 CHECK (progress >= 0 AND progress <= 1),
    stage            text,
    audio_seconds    double precision,
    input_size       bigint,
    idempotency_key  text CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    dispatched_at    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    error            text,
    result           jsonb,
    -- A lease exists exactly while a worker holds the job.
    CHECK ((status = 'PROCESSING') = (lease_token IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CHECK ((status IN ('COMPLETED', 'FAILED', 'CANCELED')) = (finished_at IS NOT NULL)),
    CHECK (status <> 'COMPLETED' OR result IS NOT NULL)
);

-- Only claimable rows are indexed, so the claim scan never walks finished history.
CREATE INDEX jobs_claimable_idx ON public.jobs (priority, run_after, created_at)
    WHERE status = 'QUEUED';
-- The reaper's scan: held leases by expiry.
CREATE INDEX jobs_leased_idx ON public.jobs (lease_expires_at) WHERE status = 'PROCESSING';
CREATE INDEX jobs_user_created_idx ON public.jobs (user_id, created_at DESC);
CREATE UNIQUE INDEX jobs_user_idempotency_key ON public.jobs (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

CREATE TABLE public.job_files (
    id           bigserial PRIMARY KEY,
    job_id       uuid NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('input', 'output', 'log')),
    storage_path text NOT NULL,
    size         bigint,
    content_type text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, kind, storage_path)
);
CREATE INDEX job_files_job_idx ON public.job_files (job_id);

-- Every state change a worker, the reaper or a user caused; the crash tests count these.
CREATE TABLE public.job_events (
    id         bigserial PRIMARY KEY,
    job_id     uuid NOT NULL REFERENCES public.jobs (id) ON DELETE CASCADE,
    event      text NOT NULL
               CHECK (event IN ('completed', 'failed', 'requeued', 'canceled', 'lease_expired')),
    attempt    integer NOT NULL,
    worker_id  text,
    detail     text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job_idx ON public.job_events (job_id);

-- One row per completed job, ever (job_id is UNIQUE): billing sums these.
CREATE TABLE public.gpu_usage_logs (
    id               bigserial PRIMARY KEY,
    job_id           uuid NOT NULL UNIQUE REFERENCES public.jobs (id) ON DELETE CASCADE,
    user_id          uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    kind             text NOT NULL,
    duration_seconds double precision NOT NULL CHECK (duration_seconds >= 0),
    audio_seconds    double precision NOT NULL DEFAULT 0 CHECK (audio_seconds >= 0),
    worker_id        text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gpu_usage_logs_user_created_idx ON public.gpu_usage_logs (user_id, created_at);

ALTER TABLE public.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.job_files ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.job_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.gpu_usage_logs ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON public.jobs, public.job_files, public.job_events, public.gpu_usage_logs
    FROM anon, authenticated;
GRANT SELECT ON public.jobs, public.job_files, public.job_events, public.gpu_usage_logs
    TO authenticated;
GRANT ALL ON public.jobs, public.job_files, public.job_events, public.gpu_usage_logs
    TO service_role;
GRANT USAGE, SELECT ON SEQUENCE public.job_files_id_seq, public.job_events_id_seq,
    public.gpu_usage_logs_id_seq TO service_role;

CREATE POLICY jobs_select_own ON public.jobs
    FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY job_files_select_own ON public.job_files
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.jobs j WHERE j.id = job_id AND j.user_id = auth.uid()));
CREATE POLICY job_events_select_own ON public.job_events
    FOR SELECT TO authenticated
    USING (EXISTS (SELECT 1 FROM public.jobs j WHERE j.id = job_id AND j.user_id = auth.uid()));
CREATE POLICY gpu_usage_logs_select_own ON public.gpu_usage_logs
    FOR SELECT TO authenticated USING (user_id = auth.uid());
