-- Schema version 3: people, signatures and the site chain.
--
-- site_events is the store's own append-only, hash-chained trail of everything that is
-- not one batch: users added and changed, failed log-ins, the site policy, material
-- lots, approved formulations, sealed record heads and exported anchors. Each row is
-- signed (Ed25519) by the key its key_id names, or unsigned (key_id and signature empty)
-- for the few kinds doseprint writes on nobody's behalf (a failed log-in).
-- event_signatures holds the signature of each record event by its signer's key; it
-- sits beside events so that the events' rows, and their hashes, stay as they were.

CREATE TABLE site_events (
    seq       INTEGER PRIMARY KEY,
    utc       TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    data      TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL
);

CREATE INDEX site_events_by_kind ON site_events (kind, seq);

CREATE TABLE event_signatures (
    record_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    signer    TEXT NOT NULL,
    key_id    TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (record_id, seq)
);

CREATE TRIGGER site_events_no_update BEFORE UPDATE ON site_events
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a site event cannot be changed');
END;

CREATE TRIGGER site_events_no_delete BEFORE DELETE ON site_events
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a site event cannot be deleted');
END;

CREATE TRIGGER event_signatures_no_update BEFORE UPDATE ON event_signatures
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a signature cannot be changed');
END;

CREATE TRIGGER event_signatures_no_delete BEFORE DELETE ON event_signatures
BEGIN
    SELECT RAISE(ABORT, 'doseprint records are append-only: a signature cannot be deleted');
END;
