-- Password reset codes and data exports (issue 14). Numbered 0005: 0004 is moderation's.

-- Reset codes, keyed by email whether or not a member has it: a request for an unknown address
-- stores a code nobody receives, so resetPassword answers alike for members and strangers.
CREATE TABLE password_resets (
    email           VARCHAR(200) NOT NULL PRIMARY KEY,
    code_hash       CHAR(64)     NOT NULL,   -- SHA-256 of the code, hex; the code is never stored
    sent_at         BIGINT       NOT NULL,
    expires_at      BIGINT       NOT NULL,
    failed_attempts BIGINT       NOT NULL DEFAULT 0,
    KEY password_resets_expires_idx (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;

-- When each member last started a data export: at most one an hour.
CREATE TABLE data_exports (
    member_id  BIGINT NOT NULL PRIMARY KEY,
    started_at BIGINT NOT NULL,
    CONSTRAINT data_exports_member_fk FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB;
