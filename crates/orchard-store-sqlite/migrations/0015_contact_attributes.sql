-- The names of the custom attributes contacts have had (`custom.NAME` in the rule language),
-- each with when Orchard first stored one, so that a filter or rule reading a custom attribute
-- no contact has had (a misspelling, `custom.plna`) is warned about, as an event type or
-- property never recorded is (0013, 0014). Kept by every write of contacts' details.
CREATE TABLE contact_attributes (
    name TEXT PRIMARY KEY,
    first_recorded_at INTEGER NOT NULL
);
-- Row by row into the small table rather than grouped (see 0014).
INSERT INTO contact_attributes (name, first_recorded_at)
SELECT j.key, c.created_at
FROM contacts c, json_each(c.details, '$.custom') j
WHERE json_type(c.details, '$.custom') = 'object'
ON CONFLICT (name) DO UPDATE SET first_recorded_at = excluded.first_recorded_at
WHERE excluded.first_recorded_at < contact_attributes.first_recorded_at;
