-- Leases: a named right held by one process until expires_at (unix microseconds UTC),
-- taken and renewed by a conditional UPDATE (or the INSERT of a name nobody holds), the
-- way commands are claimed. The bus's pruner holds the lease "retention", so one bus
-- process at a time prunes; info is what the holder reports (for retention: the policy
-- in force and the last run, as JSON), read by the console.
CREATE TABLE IF NOT EXISTS eventbus_leases (
    name       TEXT    NOT NULL PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    renewed_at INTEGER NOT NULL,
    info       TEXT    NOT NULL DEFAULT ''
);
