-- Segments are chosen by name (the builder, exports, sequences and routing rules later), so
-- two with one name are a trap. Any already there keep their members; all but the first get
-- their id added to the name.
UPDATE segments SET name = name || ' (' || CAST(id AS TEXT) || ')'
WHERE id NOT IN (SELECT min(id) FROM segments GROUP BY name);
CREATE UNIQUE INDEX segments_name ON segments (name);
