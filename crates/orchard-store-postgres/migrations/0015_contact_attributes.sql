-- The names of the custom attributes contacts have had (`custom.NAME` in the rule language),
-- each with when Orchard first stored one, so that a filter or rule reading a custom attribute
-- no contact has had (a misspelling, `custom.plna`) is warned about, as an event type or
-- property never recorded is (0013, 0014). Kept by every write of contacts' details.
CREATE TABLE contact_attributes (
    name TEXT PRIMARY KEY,
    first_recorded_at BIGINT NOT NULL
);
INSERT INTO contact_attributes (name, first_recorded_at)
SELECT k.key, MIN(c.created_at)
FROM contacts c,
     json_object_keys(CASE WHEN json_typeof(c.details::json -> 'custom') = 'object'
                           THEN c.details::json -> 'custom' ELSE '{}'::json END) AS k(key)
GROUP BY k.key;
