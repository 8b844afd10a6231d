-- Tables of the built-in, Supabase-compatible auth server (embedded mode). Harmless on a real
-- Supabase project (nothing uses them there). Only the backend (table owner) touches them:
-- RLS is on with no policies, and the API roles get no grants.

CREATE SCHEMA IF NOT EXISTS nojoin_auth;
REVOKE ALL ON SCHEMA nojoin_auth FROM PUBLIC;

CREATE TABLE nojoin_auth.sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_idx ON nojoin_auth.sessions (user_id);

-- Refresh tokens are stored as SHA-256 hashes. A token is used once (rotation); presenting a
-- used token again revokes its whole session (reuse detection).
CREATE TABLE nojoin_auth.refresh_tokens (
    token_hash  text PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES nojoin_auth.sessions (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    parent_hash text,
    revoked     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_session_idx ON nojoin_auth.refresh_tokens (session_id);

CREATE TABLE nojoin_auth.recovery_tokens (
    id         bigserial PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
    otp_hash   text NOT NULL,
    link_hash  text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX recovery_tokens_user_idx ON nojoin_auth.recovery_tokens (user_id);

-- Failed sign-in / verify attempts, for rate limiting across processes.
CREATE TABLE nojoin_auth.attempts (
    id           bigserial PRIMARY KEY,
    key          text NOT NULL,
    attempted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attempts_key_time_idx ON nojoin_auth.attempts (key, attempted_at);

-- Development mailer: mails that a real deployment would send (password recovery).
CREATE TABLE nojoin_auth.mail_outbox (
    id         bigserial PRIMARY KEY,
    recipient  text NOT NULL,
    subject    text NOT NULL,
    body       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE nojoin_auth.sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE nojoin_auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE nojoin_auth.recovery_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE nojoin_auth.attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE nojoin_auth.mail_outbox ENABLE ROW LEVEL SECURITY;
