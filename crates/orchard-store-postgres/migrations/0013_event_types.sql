-- The types the log holds an event of, each with when Orchard first stored one: the segment
-- builder lists them, and a filter or rule naming any other type (a custom one not seen yet, or
-- a misspelling: any well-formed name is a valid type) is warned about, with the nearest type
-- that exists. Kept by every insert into events; read whole, never scanned from the log.
CREATE TABLE event_types (
    type TEXT PRIMARY KEY,
    first_recorded_at BIGINT NOT NULL
);
INSERT INTO event_types (type, first_recorded_at)
SELECT type, MIN(received_at) FROM events GROUP BY type;
