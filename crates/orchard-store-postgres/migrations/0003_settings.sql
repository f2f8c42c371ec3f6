-- Installation-wide settings and secrets that every `orchard serve` process must agree on
-- (e.g. the key that signs tracking links).
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
