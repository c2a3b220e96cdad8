-- Keyspace `heart` (sharded, vschema.json): the tables of core-api/migrations/mysql as they are,
-- plus what sharding needs. Applied to the source database before MoveTables (docs/scale.md,
-- "Migration"), so the copy starts from this shape.

-- 1. Foreign keys that would cross shards go: a follow, a block or a report lives on one member's
--    shard and names a member who lives on another. The core deletes these rows itself when a
--    member goes (member::repo::delete: "explicit deletes keep MySQL and SQLite alike"), so no
--    cascade is lost. The keys that stay join rows of one shard (sessions, posts, post_images,
--    refresh_tokens, console_sessions, data_exports: all with their member's or post's row).
ALTER TABLE blocks DROP FOREIGN KEY blocks_blocked_fk;
ALTER TABLE follows DROP FOREIGN KEY follows_followee_fk;
ALTER TABLE reports DROP FOREIGN KEY reports_reporter_fk;

-- 2. Lookup tables of the lookup vindexes: from-column(s) → keyspace_id of the owner row. Each is
--    sharded by its own from-column (xxhash) and written by vtgate in the owner's transaction
--    (consistent_lookup: lookup row first, on its own connection, so no two-phase commit).
CREATE TABLE members_email_lookup (
    email       VARCHAR(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (email)
) ENGINE = InnoDB;

CREATE TABLE sessions_lookup (
    id          CHAR(32)      NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

CREATE TABLE refresh_tokens_lookup (
    token_hash  CHAR(64)      NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (token_hash)
) ENGINE = InnoDB;

CREATE TABLE console_sessions_lookup (
    token_hash  CHAR(64)      NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (token_hash)
) ENGINE = InnoDB;

CREATE TABLE posts_lookup (
    id          BIGINT        NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;

-- Non-unique: one row per follow, found by followee (the followers list and count).
CREATE TABLE follows_followee_lookup (
    followee_id BIGINT        NOT NULL,
    follower_id BIGINT        NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (followee_id, follower_id)
) ENGINE = InnoDB;

CREATE TABLE reports_lookup (
    id          BIGINT        NOT NULL,
    keyspace_id VARBINARY(10) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;
