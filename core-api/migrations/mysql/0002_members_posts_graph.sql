-- Posts with images, blocks, follows, reports, and objects waiting to be deleted from storage.
CREATE TABLE posts (
    id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    writer_id  BIGINT NOT NULL,
    content    VARCHAR(5000) NOT NULL, -- VARCHAR, not TEXT: sqlx Any reads MySQL TEXT as bytes
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Feeds read newest first with the id as tie-break. The home feed's index also covers the
    -- writer, so skipping a deep page and hiding blocked writers never touches the table rows.
    KEY posts_feed_idx (created_at, id, writer_id),
    KEY posts_writer_feed_idx (writer_id, created_at, id),
    CONSTRAINT posts_writer_fk FOREIGN KEY (writer_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE post_images (
    post_id    BIGINT       NOT NULL,
    position   BIGINT       NOT NULL,
    object_key VARCHAR(512) NOT NULL,
    PRIMARY KEY (post_id, position),
    CONSTRAINT post_images_post_fk FOREIGN KEY (post_id) REFERENCES posts (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE blocks (
    blocker_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id),
    KEY blocks_blocked_idx (blocked_id),
    CONSTRAINT blocks_blocker_fk FOREIGN KEY (blocker_id) REFERENCES members (id) ON DELETE CASCADE,
    CONSTRAINT blocks_blocked_fk FOREIGN KEY (blocked_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE follows (
    follower_id BIGINT NOT NULL,
    followee_id BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (follower_id, followee_id),
    KEY follows_followee_idx (followee_id, created_at),
    CONSTRAINT follows_follower_fk FOREIGN KEY (follower_id) REFERENCES members (id) ON DELETE CASCADE,
    CONSTRAINT follows_followee_fk FOREIGN KEY (followee_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE reports (
    id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    reporter_id BIGINT NOT NULL,
    target_id   BIGINT NOT NULL,
    reason      VARCHAR(1000) NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE KEY reports_pair_uq (reporter_id, target_id),
    KEY reports_target_idx (target_id),
    CONSTRAINT reports_reporter_fk FOREIGN KEY (reporter_id) REFERENCES members (id) ON DELETE CASCADE,
    CONSTRAINT reports_target_fk FOREIGN KEY (target_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Objects whose rows are gone but whose deletion from storage failed: retried until it succeeds.
CREATE TABLE storage_garbage (
    object_key VARCHAR(512) NOT NULL PRIMARY KEY,
    queued_at  BIGINT       NOT NULL,
    attempts   BIGINT       NOT NULL DEFAULT 0
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
