-- Hostile-input fixes (issue 12).
-- 1. Emails compare exactly: under utf8mb4_unicode_ci `ｋｉｍ@…`, `kím@…` and `ki\u200bm@…` equal
--    `kim@…`, so every variant reached one account with its own rate-limit counter. Stored emails
--    are already normalised (trimmed, lower-cased, ASCII), so the binary collation changes no row.
ALTER TABLE members MODIFY email VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;
ALTER TABLE email_verifications MODIFY email VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL;

-- 2. Reports about a deleted member stay, with a snapshot of what moderators need; only the
--    reports *by* a deleted member go (the reporter key still cascades).
ALTER TABLE reports
    DROP FOREIGN KEY reports_target_fk,
    ADD COLUMN target_nickname     VARCHAR(100) NULL,
    ADD COLUMN target_email_sha256 CHAR(64)     NULL,
    ADD COLUMN target_deleted_at   BIGINT       NULL;

-- 3. Sessions of deleted members, remembered as revoked until their access tokens expired, so a
--    restart or a flushed cache refills their revocations (the session rows are gone).
CREATE TABLE revoked_sessions (
    session_id VARCHAR(64) NOT NULL PRIMARY KEY,
    revoked_at BIGINT      NOT NULL,
    KEY revoked_sessions_at_idx (revoked_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
