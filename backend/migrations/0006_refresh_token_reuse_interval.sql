-- When a refresh token was rotated, remember when: presenting it again within a few seconds
-- (two refreshes racing in one app) is tolerated like GoTrue's reuse interval; later it is
-- treated as theft and revokes the session.
ALTER TABLE nojoin_auth.refresh_tokens ADD COLUMN revoked_at timestamptz;
