-- History items carry the length of their properties in bytes, `[seq,at,"type",length,
-- properties]`, so that a refresh steps over the events and properties it does not read
-- without reading them through (most of a history, most of the time). Bytes of UTF-8, as the
-- reader receives the text, whatever the database's own encoding. Every history is written
-- afresh from `events`, as `orchard rebuild --repack` would.
DELETE FROM contact_histories;
INSERT INTO contact_histories (contact_id, events)
SELECT contact_id, string_agg('[' || seq || ',' || at || ',"' || type || '",' || octet_length(convert_to(properties, 'UTF8')) || ',' || properties || ']', ',')
FROM events WHERE contact_id IS NOT NULL GROUP BY contact_id;
