-- Segments (SPEC A2): saved filters in the rule language, and their members, kept current by the
-- same apply step that keeps scores current. Membership changes are also logged as
-- segment_entered / segment_left events.
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    filter TEXT NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE segment_members (
    segment_id INTEGER NOT NULL REFERENCES segments (id) ON DELETE CASCADE,
    contact_id INTEGER NOT NULL,
    since INTEGER NOT NULL,
    PRIMARY KEY (segment_id, contact_id)
);
CREATE INDEX segment_members_contact ON segment_members (contact_id);
