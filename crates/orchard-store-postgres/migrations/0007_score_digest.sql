-- A digest of each contact's stored score history (orchard_core::scoring::Scored::digest), so a
-- refresh or rebuild rewrites only the histories that changed instead of all of them.
ALTER TABLE contacts ADD COLUMN score_digest BIGINT;
