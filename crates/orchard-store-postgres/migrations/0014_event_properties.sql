-- The property names the events of each type have carried (the top-level keys of their
-- properties that the rule language can name), each with when Orchard first stored one, so
-- that a filter or rule testing a property no event of its type has had (`page_viewed where
-- uri ~ "/pricing"`, which counts nothing) is warned about, as a type never recorded is
-- (0013). Kept by every insert into events; read whole, never scanned from the log.
CREATE TABLE event_properties (
    type TEXT NOT NULL,
    key TEXT NOT NULL,
    first_recorded_at BIGINT NOT NULL,
    PRIMARY KEY (type, key)
);
INSERT INTO event_properties (type, key, first_recorded_at)
SELECT e.type, k.key, MIN(e.received_at)
FROM events e, json_object_keys(CASE WHEN json_typeof(e.properties::json) = 'object'
                                     THEN e.properties::json ELSE '{}'::json END) AS k(key)
WHERE k.key ~ '^[A-Za-z_][A-Za-z0-9_.]{0,63}$'
GROUP BY e.type, k.key;
