-- Members, email verification, sessions and refresh tokens.
CREATE TABLE members (
    id            BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    email         VARCHAR(200) NOT NULL,     -- trimmed and lower-cased: uniqueness is case-insensitive
    name          VARCHAR(80)  NOT NULL,
    nickname      VARCHAR(80)  NOT NULL,
    password_hash VARCHAR(255) NOT NULL,     -- Argon2id PHC string
    role          VARCHAR(16)  NOT NULL DEFAULT 'USER',
    avatar_key    VARCHAR(255) NULL,         -- object-storage key of the avatar
    created_at    BIGINT       NOT NULL,
    updated_at    BIGINT       NOT NULL,
    UNIQUE KEY members_email_uq (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE email_verifications (
    email           VARCHAR(200) NOT NULL PRIMARY KEY,
    code_hash       CHAR(64)     NOT NULL,   -- SHA-256 of the code, hex
    sent_at         BIGINT       NOT NULL,
    expires_at      BIGINT       NOT NULL,
    failed_attempts BIGINT       NOT NULL DEFAULT 0,
    verified_until  BIGINT       NULL        -- set by a correct confirmation; join requires it
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE sessions (
    id             CHAR(32)    NOT NULL PRIMARY KEY,  -- random, 128 bits hex; the access token's sid
    member_id      BIGINT      NOT NULL,
    created_at     BIGINT      NOT NULL,
    revoked_at     BIGINT      NULL,
    revoked_reason VARCHAR(32) NULL,
    KEY sessions_member_idx (member_id),
    CONSTRAINT sessions_member_fk FOREIGN KEY (member_id) REFERENCES members (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE refresh_tokens (
    token_hash  CHAR(64) NOT NULL PRIMARY KEY,  -- SHA-256 of the token, hex; the token itself is never stored
    session_id  CHAR(32) NOT NULL,
    parent_hash CHAR(64) NULL,                  -- the token this one replaced
    created_at  BIGINT   NOT NULL,
    expires_at  BIGINT   NOT NULL,
    rotated_at  BIGINT   NULL,                  -- set when it was exchanged for a new one
    grace_used  BIGINT   NOT NULL DEFAULT 0,    -- 1 once it was presented again within the grace period
    KEY refresh_tokens_session_idx (session_id),
    KEY refresh_tokens_parent_idx (parent_hash),
    CONSTRAINT refresh_tokens_session_fk FOREIGN KEY (session_id) REFERENCES sessions (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
