-- Schema version 2: what each bay may be drawing survives a restart, and the ordered stream
-- of bay events is kept (the facts an OCPP backend is told: sessions, meter readings).

-- Per bay, the most its node may be drawing per site phase (0.1 A), as the setpoint
-- sequencer reserves it. A raise is on disk before the write that raises it goes out; at
-- start these are reserved for bays not heard yet. A row of zeros is deleted.
CREATE TABLE reservations (
    bay       TEXT    PRIMARY KEY,
    l1_deciamps INTEGER NOT NULL CHECK (l1_deciamps >= 0),
    l2_deciamps INTEGER NOT NULL CHECK (l2_deciamps >= 0),
    l3_deciamps INTEGER NOT NULL CHECK (l3_deciamps >= 0)
) WITHOUT ROWID;

-- Every bay event of the core, in the order it happened (append only).
CREATE TABLE bay_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms      INTEGER NOT NULL,
    bay        TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    event_json TEXT    NOT NULL
);
CREATE INDEX bay_events_by_bay ON bay_events (bay, id);
CREATE TRIGGER bay_events_append_only BEFORE UPDATE ON bay_events
BEGIN
    SELECT RAISE(ABORT, 'the bay event log is append-only');
END;
