-- Contacts' details as JSONB, SQLite's binary JSON: a refresh picks the members its rules read
-- out of every contact's details (`json_extract`), which parsed the text afresh each time, a
-- twelfth of a rebuild's instructions. Written through `jsonb(?)` and read through `json()`
-- (`Dialect::json_column`), so the text that goes in is the text that comes out.
UPDATE contacts SET details = jsonb(details);
