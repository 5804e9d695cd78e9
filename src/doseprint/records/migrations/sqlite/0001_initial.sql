-- doseprint record store, schema version 1 (SQLite): the tables and their guards.
--
-- A record is written once (its content) and then only grows by events. Nothing is
-- updated or deleted: the triggers below refuse it, and the hash chain over the events
-- (store.py) shows any change made around them. dialect.py runs the statements one by
-- one inside the migration's transaction.

CREATE TABLE schema_version (
    version     INTEGER PRIMARY KEY,
    applied_utc TEXT NOT NULL
);

-- One row per batch-of-one record. content is canonical JSON (sorted keys, no spaces);
-- content_sha256 is its hash, also carried in event 0 so the chain covers it.
-- prescription_id and patient are copies taken from content for listing.
CREATE TABLE records (
    id              TEXT PRIMARY KEY,
    created_utc     TEXT NOT NULL,
    prescription_id TEXT NOT NULL,
    patient         TEXT NOT NULL,
    content         TEXT NOT NULL,
    content_sha256  TEXT NOT NULL
);

CREATE INDEX records_created ON records (created_utc);

-- The append-only audit trail of each record; seq counts from 0 per record.
CREATE TABLE events (
    record_id TEXT NOT NULL REFERENCES records (id),
    seq       INTEGER NOT NULL,
    utc       TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
);

CREATE TRIGGER records_no_update BEFORE UPDATE ON records
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a record cannot be changed');
END;

CREATE TRIGGER records_no_delete BEFORE DELETE ON records
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a record cannot be deleted');
END;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: an event cannot be changed');
END;

CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: an event cannot be deleted');
END;
