-- Moderation (issue 14): suspended members, resolved reports, and the console's sign-in sessions.

-- A suspended member cannot log in, their posts leave every feed and their profile is hidden.
ALTER TABLE members
    ADD COLUMN suspended_at     BIGINT        NULL,
    ADD COLUMN suspended_reason VARCHAR(1000) NULL,
    ADD KEY members_suspended_idx (suspended_at);

-- A report stays open until an admin dismisses it or suspends its target.
ALTER TABLE reports
    ADD COLUMN resolved_at BIGINT        NULL,
    ADD COLUMN resolved_by BIGINT        NULL,   -- the admin; no foreign key: kept after they go
    ADD COLUMN action      VARCHAR(16)   NULL,   -- 'dismiss' or 'suspend'
    ADD COLUMN note        VARCHAR(1000) NULL,
    ADD KEY reports_status_idx (resolved_at, created_at);

-- The moderation console's browser sessions. Each rides on a row of `sessions`, so revoking the
-- member's sessions (suspension, deletion) ends it too; the cookie's secret is stored hashed.
CREATE TABLE console_sessions (
    token_hash CHAR(64)    NOT NULL PRIMARY KEY,
    session_id CHAR(32)    NOT NULL,
    csrf_token CHAR(64)    NOT NULL,
    expires_at BIGINT      NOT NULL,
    KEY console_sessions_expiry_idx (expires_at),
    CONSTRAINT console_sessions_session_fk FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
