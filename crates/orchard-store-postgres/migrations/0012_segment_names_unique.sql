-- Segments are chosen by name (the builder, exports, sequences and routing rules later), so
-- two with one name are a trap. Any already there keep their members; all but the first get
-- "(segment ID)" added to the name: an id is unique, and nobody names a segment so.
UPDATE segments SET name = name || ' (segment ' || CAST(id AS TEXT) || ')'
WHERE id NOT IN (SELECT min(id) FROM segments GROUP BY name);
CREATE UNIQUE INDEX segments_name ON segments (name);
