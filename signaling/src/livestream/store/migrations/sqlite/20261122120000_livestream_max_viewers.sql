-- A livestream's own viewer limit (SQLite): NULL means the server-wide LIVESTREAM_MAX_VIEWERS.
ALTER TABLE livestreams ADD COLUMN max_viewers BIGINT CHECK (max_viewers > 0);
