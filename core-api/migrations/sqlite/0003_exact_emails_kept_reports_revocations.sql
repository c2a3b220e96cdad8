-- Hostile-input fixes (issue 12). SQLite compares TEXT exactly (BINARY) already: emails need nothing.

-- Reports about a deleted member stay, with a snapshot of what moderators need; only the reports
-- *by* a deleted member go. SQLite cannot drop a foreign key: the table is rebuilt without it.
CREATE TABLE reports_kept (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id         INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    target_id           INTEGER NOT NULL,   -- no foreign key: kept after the target is deleted
    reason              TEXT,
    created_at          INTEGER NOT NULL,
    target_nickname     TEXT,
    target_email_sha256 TEXT,
    target_deleted_at   INTEGER
);
INSERT INTO reports_kept (id, reporter_id, target_id, reason, created_at)
    SELECT id, reporter_id, target_id, reason, created_at FROM reports;
DROP TABLE reports;
ALTER TABLE reports_kept RENAME TO reports;
CREATE UNIQUE INDEX reports_pair_uq ON reports (reporter_id, target_id);
CREATE INDEX reports_target_idx ON reports (target_id);

-- Sessions of deleted members, remembered as revoked until their access tokens expired, so a
-- restart or a flushed cache refills their revocations (the session rows are gone).
CREATE TABLE revoked_sessions (
    session_id TEXT    PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX revoked_sessions_at_idx ON revoked_sessions (revoked_at);
