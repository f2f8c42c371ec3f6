-- Scoring (SPEC A3): versioned rule sets, every score change with its rule, time and cause, and
-- a due-time index for contacts whose derived state (score, segment membership) changes with the
-- passing of time.
CREATE TABLE rule_sets (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    definition TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- When it was made live; the live set is the one made live last.
    live_since INTEGER
);

CREATE TABLE score_changes (
    contact_id INTEGER NOT NULL,
    rule_version INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    points INTEGER NOT NULL,
    at INTEGER NOT NULL,
    event_seq INTEGER,
    cause TEXT NOT NULL
);
CREATE INDEX score_changes_contact ON score_changes (contact_id, at);

ALTER TABLE contacts ADD COLUMN due_at INTEGER;
CREATE INDEX contacts_due ON contacts (due_at) WHERE due_at IS NOT NULL;
