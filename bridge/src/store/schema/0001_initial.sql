-- Schema version 1 of the bridge's store. Applied inside one transaction together with
-- `PRAGMA user_version = 1`, so a crash leaves either no schema or all of it.

-- Runtime settings changed by an operator (HA, HTTP API, dashboard), replayed at startup.
-- One row per (scope, field): a newer change of the same field replaces the older row and
-- gets a higher `seq`, so replaying in `seq` order applies the latest value last.
-- `scope` is the bay id, or '' for site-wide settings.
CREATE TABLE settings (
    seq         INTEGER PRIMARY KEY,
    scope       TEXT    NOT NULL,
    field       TEXT    NOT NULL,
    change_json TEXT    NOT NULL,
    UNIQUE (scope, field)
);

-- Lifetime energy per bay. Only ever raised (see energy.rs), so Home Assistant's
-- `total_increasing` never sees it go backwards.
CREATE TABLE energy (
    bay      TEXT    PRIMARY KEY,
    total_wh INTEGER NOT NULL CHECK (total_wh >= 0)
) WITHOUT ROWID;

-- Finished charging sessions.
CREATE TABLE sessions (
    id                   INTEGER PRIMARY KEY,
    bay                  TEXT    NOT NULL,
    started_ms           INTEGER NOT NULL,
    ended_ms             INTEGER NOT NULL,
    energy_wh            REAL    NOT NULL,
    id_tag               TEXT,
    max_current_deciamps INTEGER,
    solar_wh             REAL
);
CREATE INDEX sessions_by_start ON sessions (started_ms);
CREATE INDEX sessions_by_bay_start ON sessions (bay, started_ms);

-- OCPP messages waiting for their central system. AUTOINCREMENT so an id is never reused:
-- a late `ack` of an old id can never delete a newer message.
CREATE TABLE ocpp_queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point  TEXT    NOT NULL,
    message_json  TEXT    NOT NULL
);
CREATE INDEX ocpp_queue_by_charge_point ON ocpp_queue (charge_point, id);

-- Append-only log of what happened (bay online/offline, errors, limit changes).
CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms  INTEGER NOT NULL,
    bay    TEXT,
    text   TEXT    NOT NULL
);
CREATE TRIGGER events_append_only BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'the event log is append-only');
END;
