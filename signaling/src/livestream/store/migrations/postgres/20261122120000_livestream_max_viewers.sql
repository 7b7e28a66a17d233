-- A livestream's own viewer limit (PostgreSQL): NULL means the server-wide LIVESTREAM_MAX_VIEWERS.
ALTER TABLE livestreams ADD COLUMN IF NOT EXISTS max_viewers BIGINT CHECK (max_viewers > 0);
