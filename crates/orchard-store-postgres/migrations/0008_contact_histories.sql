-- Each contact's own events as derivations read them, packed into one text per contact: items
-- `[seq,at,"type",properties]` joined by commas, in the order they were stored. A second,
-- contact-ordered layout of the log, written in the same transaction as the `events` rows it
-- copies (like an index): a refresh reads one row per contact instead of building the text
-- from each event row, which cost the database more than everything else a rebuild asked of
-- it. `orchard rebuild --repack` writes it afresh from `events`.
CREATE TABLE contact_histories (
    contact_id BIGINT PRIMARY KEY,
    events TEXT NOT NULL
);
INSERT INTO contact_histories (contact_id, events)
SELECT contact_id, string_agg('[' || seq || ',' || at || ',"' || type || '",' || properties || ']', ',')
FROM events WHERE contact_id IS NOT NULL GROUP BY contact_id;
