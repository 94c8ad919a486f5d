-- Schema version 4: how long a session went without readings.

-- Milliseconds of the session when the bay was offline longer than the heartbeat timeout:
-- the nodes have no energy register, so `energy_wh` misses what flowed then. 0: complete.
ALTER TABLE sessions ADD COLUMN uncounted_ms INTEGER NOT NULL DEFAULT 0;
