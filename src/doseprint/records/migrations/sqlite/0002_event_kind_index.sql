-- Schema version 2: an index for the status of a record (its last status-changing
-- event) and for finding prints left running, which read events by record and kind.

CREATE INDEX events_by_kind ON events (record_id, kind, seq);
