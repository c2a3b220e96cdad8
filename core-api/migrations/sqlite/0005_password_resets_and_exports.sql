-- Password reset codes and data exports (issue 14). Numbered 0005: 0004 is moderation's.

-- Reset codes, keyed by email whether or not a member has it: a request for an unknown address
-- stores a code nobody receives, so resetPassword answers alike for members and strangers.
CREATE TABLE password_resets (
    email           TEXT    PRIMARY KEY,
    code_hash       TEXT    NOT NULL,        -- SHA-256 of the code, hex; the code is never stored
    sent_at         INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);

-- When each member last started a data export: at most one an hour.
CREATE TABLE data_exports (
    member_id  INTEGER PRIMARY KEY REFERENCES members (id) ON DELETE CASCADE,
    started_at INTEGER NOT NULL
);
