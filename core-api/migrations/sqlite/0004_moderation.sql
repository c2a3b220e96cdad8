-- Moderation (issue 14): suspended members, resolved reports, and the console's sign-in sessions.

-- A suspended member cannot log in, their posts leave every feed and their profile is hidden.
ALTER TABLE members ADD COLUMN suspended_at     INTEGER;
ALTER TABLE members ADD COLUMN suspended_reason TEXT;
CREATE INDEX members_suspended_idx ON members (suspended_at);

-- A report stays open until an admin dismisses it or suspends its target.
ALTER TABLE reports ADD COLUMN resolved_at INTEGER;
ALTER TABLE reports ADD COLUMN resolved_by INTEGER;   -- the admin; no foreign key: kept after they go
ALTER TABLE reports ADD COLUMN action      TEXT;      -- 'dismiss' or 'suspend'
ALTER TABLE reports ADD COLUMN note        TEXT;
CREATE INDEX reports_status_idx ON reports (resolved_at, created_at);

-- The moderation console's browser sessions. Each rides on a row of `sessions`, so revoking the
-- member's sessions (suspension, deletion) ends it too; the cookie's secret is stored hashed.
CREATE TABLE console_sessions (
    token_hash TEXT    PRIMARY KEY,          -- SHA-256 of the cookie's secret, hex
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    csrf_token TEXT    NOT NULL,             -- put in every form of the console
    expires_at INTEGER NOT NULL
);
CREATE INDEX console_sessions_expiry_idx ON console_sessions (expires_at);
