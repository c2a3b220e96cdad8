-- Keyspace `heart_seq` (unsharded): the sequences that replace AUTO_INCREMENT for the ids of the
-- sharded keyspace `heart` (vschema-seq.json; `auto_increment` in vschema.json). One row each;
-- vttablet hands out blocks of `cache` ids, so ids stay unique and roughly increasing, with gaps.
-- Before the cutover, `next_id` is set above the source's MAX(id) (docs/scale.md, "Migration").
CREATE TABLE members_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id)) COMMENT 'vitess_sequence';
INSERT INTO members_seq (id, next_id, cache) VALUES (0, 1, 1000);

CREATE TABLE posts_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id)) COMMENT 'vitess_sequence';
INSERT INTO posts_seq (id, next_id, cache) VALUES (0, 1, 1000);

CREATE TABLE reports_seq (id INT, next_id BIGINT, cache BIGINT, PRIMARY KEY (id)) COMMENT 'vitess_sequence';
INSERT INTO reports_seq (id, next_id, cache) VALUES (0, 1, 100);
