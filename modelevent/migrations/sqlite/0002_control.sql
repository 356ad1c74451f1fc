-- eventbus control plane: the process registry, consumers' desired state, commands.
-- Times are unix microseconds UTC.
CREATE TABLE IF NOT EXISTS eventbus_processes (
    id                 TEXT    NOT NULL PRIMARY KEY,
    name               TEXT    NOT NULL DEFAULT '',
    host               TEXT    NOT NULL DEFAULT '',
    pid                INTEGER NOT NULL DEFAULT 0,
    version            TEXT    NOT NULL DEFAULT '',
    backend            TEXT    NOT NULL DEFAULT '',
    started_at         INTEGER NOT NULL,
    heartbeat_at       INTEGER NOT NULL,
    heartbeat_interval INTEGER NOT NULL,
    consumers          TEXT    NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS eventbus_processes_heartbeat ON eventbus_processes (heartbeat_at);

CREATE TABLE IF NOT EXISTS eventbus_consumer_states (
    consumer   TEXT    NOT NULL,
    process_id TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, process_id)
);

CREATE TABLE IF NOT EXISTS eventbus_commands (
    id          TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    event_id    TEXT    NOT NULL DEFAULT '',
    consumer    TEXT    NOT NULL DEFAULT '',
    process_id  TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL,
    claimed_by  TEXT    NOT NULL DEFAULT '',
    result      TEXT    NOT NULL DEFAULT '',
    error       TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    claimed_at  INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER NOT NULL DEFAULT 0,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS eventbus_commands_status ON eventbus_commands (status, id);
