-- Billing: one subscription row per user (kept in step with Stripe by the webhook), the
-- Stripe events already applied (idempotency) and the checkout/portal sessions handed out.
-- The daily job quota counts public.jobs rows under a per-user advisory lock (see
-- backend/billing/repository.py), so it needs no table of its own.
-- Users may read their own subscription and counters; only the backend (owner / service_role)
-- writes, so nobody can upgrade themselves with a direct database write.

CREATE TABLE public.subscriptions (
    user_id                uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    tier                   text NOT NULL DEFAULT 'free' CHECK (tier IN ('free', 'pro')),
    status                 text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'trialing', 'past_due', 'canceled')),
    -- Stripe's own status word (incomplete, unpaid, paused, ...), mapped onto `status` above.
    stripe_status          text,
    stripe_customer_id     text UNIQUE,
    stripe_subscription_id text UNIQUE,
    stripe_price_id        text,
    current_period_start   timestamptz,
    current_period_end     timestamptz,
    cancel_at_period_end   boolean NOT NULL DEFAULT false,
    -- Creation time of the newest Stripe event applied to this row: an older event that
    -- arrives late never moves the subscription backwards.
    last_event_at          timestamptz,
    last_event_id          text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK (current_period_end IS NULL OR current_period_start IS NULL
           OR current_period_end >= current_period_start)
);

-- Every webhook event we accepted, written in the same transaction as its effect.
CREATE TABLE public.stripe_events (
    id          text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 255),
    type        text NOT NULL,
    created_at  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    user_id     uuid REFERENCES auth.users (id) ON DELETE SET NULL,
    outcome     text NOT NULL,
    payload     jsonb NOT NULL
);
CREATE INDEX stripe_events_user_idx ON public.stripe_events (user_id, created_at);

-- Checkout/portal sessions created for a user; (user, idempotency key) returns the same URL
-- when the app retries, without asking the provider again.
CREATE TABLE public.billing_sessions (
    id              text PRIMARY KEY,
    user_id         uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('checkout', 'portal')),
    provider        text NOT NULL,
    idempotency_key text NOT NULL CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    url             text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, kind, idempotency_key)
);

ALTER TABLE public.subscriptions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_sessions ENABLE ROW LEVEL SECURITY;

REVOKE ALL ON public.subscriptions, public.stripe_events, public.billing_sessions
    FROM anon, authenticated;
GRANT SELECT ON public.subscriptions TO authenticated;
GRANT ALL ON public.subscriptions, public.stripe_events, public.billing_sessions
    TO service_role;

CREATE POLICY subscriptions_select_own ON public.subscriptions
    FOR SELECT TO authenticated USING (user_id = auth.uid());
-- stripe_events and billing_sessions: no policy for `authenticated` -> no rows at all.
