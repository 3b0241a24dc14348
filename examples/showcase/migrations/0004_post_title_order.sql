-- The order of `sort=title`, computed by the app (see `posts::title_order`) so that SQLite and
-- Postgres, whatever its collation, list titles alike. Rows written before this column are
-- filled in at start-up.
ALTER TABLE posts ADD COLUMN title_order TEXT;
CREATE INDEX posts_title_order ON posts (title_order);
