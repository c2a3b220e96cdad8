-- Posts with images, blocks, follows, reports, and objects waiting to be deleted from storage.
CREATE TABLE posts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    writer_id  INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    content    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
-- Feeds read newest first with the id as tie-break. The home feed's index also covers the writer,
-- so skipping a deep page and hiding blocked writers never touches the table rows.
CREATE INDEX posts_feed_idx ON posts (created_at DESC, id DESC, writer_id);
CREATE INDEX posts_writer_feed_idx ON posts (writer_id, created_at DESC, id DESC);

CREATE TABLE post_images (
    post_id    INTEGER NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    object_key TEXT    NOT NULL,
    PRIMARY KEY (post_id, position)
);

CREATE TABLE blocks (
    blocker_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    blocked_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id);

CREATE TABLE follows (
    follower_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    followee_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (follower_id, followee_id)
);
CREATE INDEX follows_followee_idx ON follows (followee_id, created_at);

CREATE TABLE reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    reporter_id INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    target_id   INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    reason      TEXT,
    created_at  INTEGER NOT NULL
);
CREATE UNIQUE INDEX reports_pair_uq ON reports (reporter_id, target_id);

-- Objects whose rows are gone but whose deletion from storage failed: retried until it succeeds.
CREATE TABLE storage_garbage (
    object_key TEXT    PRIMARY KEY,
    queued_at  INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0
);
