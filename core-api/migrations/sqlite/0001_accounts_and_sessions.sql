-- Members, email verification, sessions and refresh tokens.
CREATE TABLE members (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,          -- trimmed and lower-cased: uniqueness is case-insensitive
    name          TEXT    NOT NULL,
    nickname      TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,          -- Argon2id PHC string
    role          TEXT    NOT NULL DEFAULT 'USER',
    avatar_key    TEXT,                      -- object-storage key of the avatar
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX members_email_uq ON members (email);

CREATE TABLE email_verifications (
    email           TEXT    PRIMARY KEY,
    code_hash       TEXT    NOT NULL,        -- SHA-256 of the code, hex
    sent_at         INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    verified_until  INTEGER                  -- set by a correct confirmation; join requires it
);

CREATE TABLE sessions (
    id             TEXT    PRIMARY KEY,      -- random, 128 bits hex; the access token's sid
    member_id      INTEGER NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX sessions_member_idx ON sessions (member_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT    PRIMARY KEY,         -- SHA-256 of the token, hex; the token itself is never stored
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    parent_hash TEXT,                        -- the token this one replaced
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    rotated_at  INTEGER,                     -- set when it was exchanged for a new one
    grace_used  INTEGER NOT NULL DEFAULT 0   -- 1 once it was presented again within the grace period
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_hash);
