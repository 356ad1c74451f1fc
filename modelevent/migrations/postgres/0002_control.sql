-- eventbus control plane: the process registry, consumers' desired state, commands.
-- Times are unix microseconds UTC.
CREATE TABLE IF NOT EXISTS eventbus_processes (
    id                 VARCHAR(64)  NOT NULL PRIMARY KEY,
    name               VARCHAR(191) NOT NULL DEFAULT '',
    host               VARCHAR(191) NOT NULL DEFAULT '',
    pid                INTEGER      NOT NULL DEFAULT 0,
    version            VARCHAR(64)  NOT NULL DEFAULT '',
    backend            VARCHAR(32)  NOT NULL DEFAULT '',
    started_at         BIGINT       NOT NULL,
    heartbeat_at       BIGINT       NOT NULL,
    heartbeat_interval BIGINT       NOT NULL,
    consumers          TEXT         NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS eventbus_processes_heartbeat ON eventbus_processes (heartbeat_at);

CREATE TABLE IF NOT EXISTS eventbus_consumer_states (
    consumer   VARCHAR(191) NOT NULL,
    process_id VARCHAR(64)  NOT NULL DEFAULT '',
    state      VARCHAR(16)  NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (consumer, process_id)
);

CREATE TABLE IF NOT EXISTS eventbus_commands (
    id          VARCHAR(26)  COLLATE "C" NOT NULL PRIMARY KEY,
    kind        VARCHAR(16)  NOT NULL,
    event_id    VARCHAR(26)  NOT NULL DEFAULT '',
    consumer    VARCHAR(191) NOT NULL DEFAULT '',
    process_id  VARCHAR(64)  NOT NULL DEFAULT '',
    status      VARCHAR(16)  NOT NULL,
    claimed_by  VARCHAR(64)  NOT NULL DEFAULT '',
    result      TEXT         NOT NULL DEFAULT '',
    error       TEXT         NOT NULL DEFAULT '',
    created_at  BIGINT       NOT NULL,
    claimed_at  BIGINT       NOT NULL DEFAULT 0,
    finished_at BIGINT       NOT NULL DEFAULT 0,
    expires_at  BIGINT       NOT NULL
);
CREATE INDEX IF NOT EXISTS eventbus_commands_status ON eventbus_commands (status, id);
