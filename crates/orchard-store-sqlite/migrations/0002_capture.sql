-- Capture: attribution and consent per contact, and which anonymous visitor became which
-- contact (so earlier page views join the contact's timeline without rewriting the log).
ALTER TABLE contacts ADD COLUMN first_touch TEXT;
ALTER TABLE contacts ADD COLUMN last_touch TEXT;
ALTER TABLE contacts ADD COLUMN consent TEXT;

CREATE TABLE visitor_identities (
    visitor_id TEXT PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    identified_at INTEGER NOT NULL
);
CREATE INDEX visitor_identities_contact ON visitor_identities (contact_id);
