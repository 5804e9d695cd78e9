-- Schema version 3 (PostgreSQL): people, signatures and the site chain; see the SQLite
-- script for what the tables hold. The same text as there, so hashes agree.

CREATE TABLE site_events (
    seq       INTEGER PRIMARY KEY,
    utc       TEXT COLLATE "C" NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT COLLATE "C" NOT NULL,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE INDEX site_events_by_kind ON site_events (kind, seq);

CREATE TABLE event_signatures (
    record_id TEXT COLLATE "C" NOT NULL,
    seq       INTEGER NOT NULL,
    signer    TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
);

CREATE TRIGGER site_events_no_update BEFORE UPDATE ON site_events
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER site_events_no_delete BEFORE DELETE ON site_events
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER site_events_no_truncate BEFORE TRUNCATE ON site_events
    FOR EACH STATEMENT EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER event_signatures_no_update BEFORE UPDATE ON event_signatures
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER event_signatures_no_delete BEFORE DELETE ON event_signatures
    FOR EACH ROW EXECUTE FUNCTION doseprint_append_only();
CREATE TRIGGER event_signatures_no_truncate BEFORE TRUNCATE ON event_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION doseprint_append_only();
