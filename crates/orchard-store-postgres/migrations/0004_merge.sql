-- Merging two contacts (the same person under two emails) keeps both rows: the merged one points
-- at the contact it was merged into, so its email, its id and its part of the event log keep
-- resolving to that contact. Lists show only contacts that were not merged away.
ALTER TABLE contacts ADD COLUMN merged_into BIGINT;
CREATE INDEX contacts_merged_into ON contacts (merged_into);
