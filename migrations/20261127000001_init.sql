-- Users, their session tokens, and the notifications both systems under test serve.
CREATE TABLE IF NOT EXISTS users (
    id         BIGINT PRIMARY KEY,
    name       TEXT NOT NULL
);

-- Each poll (with auth = "db") and each push handshake looks its bearer token up here.
CREATE TABLE IF NOT EXISTS sessions (
    token      TEXT PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions (user_id);

-- The source of truth: ingest writes here first, then publishes to Redis.
CREATE TABLE IF NOT EXISTS notifications (
    id         BIGSERIAL PRIMARY KEY,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    payload    JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The polling query is "this user's notifications after id X, in order": an index on
-- (user_id, id) answers it with one index range scan, and an empty poll touches one page.
CREATE INDEX IF NOT EXISTS notifications_user_id_id ON notifications (user_id, id);
