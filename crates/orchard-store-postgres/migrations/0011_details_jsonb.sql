-- SQLite keeps contacts' details as JSONB from this version on (see its 0011); PostgreSQL's stay
-- text. Kept so that both backends number their migrations alike.
SELECT 1;
