-- Refresh tokens are swept a while after they expire (auth/sessions.rs, `delete_expired_tokens`):
-- each reissue adds a row, and without the sweep the table grew for as long as a session lived.
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);
