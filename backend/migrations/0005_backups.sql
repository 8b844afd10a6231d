-- Database backups: the private bucket `user-backups` with one folder per user, and the
-- backups metadata table. Users may read their own rows and objects; only the backend
-- (owner / service_role) records backups, so size and checksum cannot be forged.

INSERT INTO storage.buckets (id, name, public)
VALUES ('user-backups', 'user-backups', false)
ON CONFLICT (id) DO NOTHING;

-- Per-user folder: the first path segment of the object name must be the caller's user id.
CREATE POLICY "user-backups: read own folder" ON storage.objects
    FOR SELECT TO authenticated
    USING (bucket_id = 'user-backups' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "user-backups: upload to own folder" ON storage.objects
    FOR INSERT TO authenticated
    WITH CHECK (bucket_id = 'user-backups' AND (storage.foldername(name))[1] = auth.uid()::text);
CREATE POLICY "user-backups: delete own objects" ON storage.objects
    FOR DELETE TO authenticated
    USING (bucket_id = 'user-backups' AND (storage.foldername(name))[1] = auth.uid()::text);

CREATE TABLE public.backups (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    name         text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    object_key   text NOT NULL UNIQUE,
    size         bigint NOT NULL CHECK (size > 0),
    sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    provider     text NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    completed_at timestamptz,
    CHECK (object_key LIKE user_id::text || '/%')
);
CREATE INDEX backups_user_created_idx ON public.backups (user_id, created_at DESC);

ALTER TABLE public.backups ENABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.backups FROM anon, authenticated;
GRANT SELECT ON public.backups TO authenticated;
GRANT ALL ON public.backups TO service_role;

CREATE POLICY backups_select_own ON public.backups
    FOR SELECT TO authenticated USING (user_id = auth.uid());
