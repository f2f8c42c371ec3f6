-- A refresh reads each contact's memberships by contact (`derive::load_chunk`). The index on
-- `contact_id` alone sent every entry it found back to the table for the segment id; with the
-- segment id in the index, the index answers alone (SQLite: a rebuild's membership reads over
-- 100 000 contacts took 250 ms before, 165 ms after).
DROP INDEX segment_members_contact;
CREATE INDEX segment_members_contact ON segment_members (contact_id, segment_id);
