-- The property names the events of each type have carried (the top-level keys of their
-- properties that the rule language can name), each with when Orchard first stored one, so
-- that a filter or rule testing a property no event of its type has had (`page_viewed where
-- uri ~ "/pricing"`, which counts nothing) is warned about, as a type never recorded is
-- (0013). Kept by every insert into events; read whole, never scanned from the log.
CREATE TABLE event_properties (
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    first_recorded_at INTEGER NOT NULL,
    PRIMARY KEY (type, key)
);
-- Row by row into the small table rather than grouped: SQLite sorts every row of a GROUP BY
-- first, in memory here, which took 3 GB for the 26 million events of a million demo contacts.
INSERT INTO event_properties (type, key, first_recorded_at)
SELECT e.type, j.key, e.received_at
FROM events e, json_each(CASE WHEN json_valid(e.properties)
                              AND json_type(e.properties) = 'object'
                              THEN e.properties ELSE '{}' END) j
WHERE j.key GLOB '[A-Za-z_]*' AND j.key NOT GLOB '*[^A-Za-z0-9_.]*' AND length(j.key) <= 64
ON CONFLICT (type, key) DO UPDATE SET first_recorded_at = excluded.first_recorded_at
WHERE excluded.first_recorded_at < event_properties.first_recorded_at;
