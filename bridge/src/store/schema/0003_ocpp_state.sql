-- Schema version 3: what an OCPP charge point keeps across restarts.

-- Transaction messages (StartTransaction, StopTransaction, transaction MeterValues) not yet
-- acknowledged by the backend, per charge point in queue order (`seq`); a row is replaced
-- when the queue rewrites it (a learned transaction id, an attempt counted).
CREATE TABLE ocpp_tx_messages (
    charge_point TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    message_json TEXT    NOT NULL,
    PRIMARY KEY (charge_point, seq)
) WITHOUT ROWID;

-- The rest of a charge point's state by key: configuration key values the backend changed
-- (`config:<Key>`), connectors set inoperative (`inoperative:<n>`), the running transaction
-- per connector (`transaction:<n>`), the installed charging profiles and the local list.
CREATE TABLE ocpp_state (
    charge_point TEXT NOT NULL,
    key          TEXT NOT NULL,
    value_json   TEXT NOT NULL,
    PRIMARY KEY (charge_point, key)
) WITHOUT ROWID;
