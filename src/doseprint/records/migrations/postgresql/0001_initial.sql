-- doseprint record store, schema version 1 (PostgreSQL): the tables and their guards.
--
-- The same tables as on SQLite, holding the same text (canonical JSON in TEXT, not
-- JSONB, which would reorder keys and change the hashed bytes), so a record's hash chain
-- is the same on both. The tables live in the connection's current schema
-- (search_path). Triggers refuse UPDATE, DELETE and TRUNCATE. Ids and times compare
-- byte by byte (COLLATE "C"), as on SQLite, so id prefixes and listing order agree.

CREATE TABLE schema_version (
    version     INTEGER PRIMARY KEY,
    applied_utc TEXT NOT NULL
);

CREATE TABLE records (
    id              TEXT COLLATE "C" PRIMARY KEY,
    created_utc     TEXT COLLATE "C" NOT NULL,
    prescription_id TEXT NOT NULL,
    patient         TEXT NOT NULL,
    content         TEXT NOT NULL,
    content_sha256  TEXT NOT NULL
);

CREATE INDEX records_created ON records (created_utc);

CREATE TABLE events (
    record_id TEXT COLLATE "C" NOT NULL REFERENCES records (id),
    seq       INTEGER NOT NULL,
    utc       TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
);

CREATE FUNCTION doseprint_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'doseprint records are append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$;

CREATE TRIGGER records_no_update BEFORE UPDATE ON records
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER records_no_delete BEFORE DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION doseprint_append_only();
