-- Rate-limit attempts are purged by age on every insert (older than the longest window):
-- an index on the time alone keeps that delete cheap while an attack fills the table.
CREATE INDEX IF NOT EXISTS attempts_time_idx ON nojoin_auth.attempts (attempted_at);
