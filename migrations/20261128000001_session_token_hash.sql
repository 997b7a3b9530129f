-- Sessions keep the SHA-256 of their token, never the token: a lookup compares hashes, so
-- its timing says nothing about the token, and a copy of the table opens no session.
-- Sessions stored before this are plaintext and can never match again: they go.
DELETE FROM sessions;
ALTER TABLE sessions RENAME COLUMN token TO token_sha256;
