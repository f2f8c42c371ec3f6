-- The foundation schema. Portable types only (see orchard-store-sql): times are epoch
-- milliseconds, money is in cents, calendar days are ISO text, JSON documents are text.

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    team_id INTEGER REFERENCES teams (id),
    profile TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE lead_magnets (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    stage TEXT NOT NULL
);

CREATE TABLE forms (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    lead_magnet_id INTEGER REFERENCES lead_magnets (id),
    fields TEXT NOT NULL,
    consent_text TEXT NOT NULL,
    redirect_url TEXT,
    thank_you TEXT NOT NULL
);

CREATE TABLE spend (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    day TEXT NOT NULL,
    source TEXT NOT NULL,
    campaign TEXT,
    amount_cents INTEGER NOT NULL
);

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    domain TEXT,
    industry TEXT,
    employees INTEGER,
    region TEXT,
    country TEXT,
    owner_id INTEGER REFERENCES users (id),
    service_hours REAL NOT NULL DEFAULT 0,
    cost_to_serve REAL,
    created_at INTEGER NOT NULL
);

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    product TEXT NOT NULL,
    plan TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    period TEXT NOT NULL,
    start_day TEXT NOT NULL,
    end_day TEXT
);
CREATE INDEX subscriptions_account ON subscriptions (account_id);

CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    product TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    ordered_on TEXT NOT NULL
);
CREATE INDEX orders_account ON orders (account_id);

CREATE TABLE activities (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts (id),
    contact_id INTEGER,
    user_id INTEGER REFERENCES users (id),
    at INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    subject TEXT NOT NULL
);
CREATE INDEX activities_account ON activities (account_id, at);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    first_name TEXT,
    last_name TEXT,
    company TEXT,
    job_title TEXT,
    industry TEXT,
    country TEXT,
    city TEXT,
    details TEXT NOT NULL,
    account_id INTEGER REFERENCES accounts (id),
    owner_id INTEGER REFERENCES users (id),
    stage TEXT NOT NULL,
    score INTEGER NOT NULL DEFAULT 0,
    source TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_activity_at INTEGER
);
CREATE INDEX contacts_created ON contacts (created_at, id);
CREATE INDEX contacts_owner ON contacts (owner_id);
CREATE INDEX contacts_account ON contacts (account_id);

CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    contact_id INTEGER REFERENCES contacts (id),
    account_id INTEGER REFERENCES accounts (id),
    owner_id INTEGER REFERENCES users (id),
    pipeline_stage TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_cents INTEGER NOT NULL,
    expected_close TEXT,
    created_at INTEGER NOT NULL,
    closed_at INTEGER,
    lost_reason TEXT,
    competitor TEXT
);
CREATE INDEX deals_contact ON deals (contact_id);

-- The append-only event log. `client_id` is the idempotency key; `seq` the order of arrival.
-- No foreign key on contact_id: the log outlives what it describes (erasure, merges).
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    contact_id INTEGER,
    visitor_id TEXT,
    at INTEGER NOT NULL,
    properties TEXT NOT NULL,
    received_at INTEGER NOT NULL
);
CREATE INDEX events_contact ON events (contact_id, at);
CREATE INDEX events_visitor ON events (visitor_id) WHERE visitor_id IS NOT NULL;
