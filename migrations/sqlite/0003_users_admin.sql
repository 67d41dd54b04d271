-- The SHA-256 of a user's EnterMediaDB-style derived key, kept only when the opt-in
-- legacy key mode is on, so a migrated installation's clients keep working.
ALTER TABLE users ADD COLUMN legacy_key_hash TEXT;

-- Failed logins, for throttling (per user and per address).
CREATE TABLE login_failures (
    user_id TEXT NOT NULL,
    address TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE INDEX login_failures_user ON login_failures(user_id, at);
CREATE INDEX login_failures_address ON login_failures(address, at);
