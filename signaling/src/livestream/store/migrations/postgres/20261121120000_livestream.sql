-- Livestreams, their viewers and their chat (PostgreSQL). Times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS livestreams (
    id                TEXT    PRIMARY KEY,
    owner_id          TEXT    NOT NULL,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL DEFAULT '',
    status            TEXT    NOT NULL DEFAULT 'created'
                      CHECK (status IN ('created', 'live', 'ended')),
    stream_key_hash   TEXT    NOT NULL UNIQUE,
    recording_enabled BOOLEAN NOT NULL DEFAULT FALSE,
    recording_url     TEXT,
    peak_viewers      BIGINT  NOT NULL DEFAULT 0,
    created_at        BIGINT  NOT NULL,
    started_at        BIGINT,
    ended_at          BIGINT,
    key_rotated_at    BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS livestreams_by_status ON livestreams (status, started_at);

CREATE TABLE IF NOT EXISTS livestream_viewers (
    id        BIGSERIAL PRIMARY KEY,
    stream_id TEXT    NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id   TEXT    NOT NULL,
    client    TEXT    NOT NULL,
    joined_at BIGINT  NOT NULL,
    left_at   BIGINT
);
CREATE INDEX IF NOT EXISTS livestream_viewers_by_stream ON livestream_viewers (stream_id, joined_at);

CREATE TABLE IF NOT EXISTS livestream_chat (
    seq        BIGSERIAL PRIMARY KEY,
    id         TEXT    NOT NULL UNIQUE,
    stream_id  TEXT    NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id    TEXT    NOT NULL,
    message    TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    deleted_at BIGINT,
    deleted_by TEXT
);
CREATE INDEX IF NOT EXISTS livestream_chat_by_stream ON livestream_chat (stream_id, seq);

CREATE TABLE IF NOT EXISTS livestream_mutes (
    stream_id  TEXT   NOT NULL REFERENCES livestreams (id) ON DELETE CASCADE,
    user_id    TEXT   NOT NULL,
    muted_by   TEXT   NOT NULL,
    until_ms   BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (stream_id, user_id)
);
