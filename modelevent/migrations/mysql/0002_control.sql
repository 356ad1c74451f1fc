-- eventbus control plane: the process registry, consumers' desired state, commands.
-- Times are unix microseconds UTC. Every statement is idempotent (MySQL DDL is not
-- transactional).
CREATE TABLE IF NOT EXISTS eventbus_processes (
    id                 VARCHAR(64)  NOT NULL,
    name               VARCHAR(191) NOT NULL DEFAULT '',
    host               VARCHAR(191) NOT NULL DEFAULT '',
    pid                INT          NOT NULL DEFAULT 0,
    version            VARCHAR(64)  NOT NULL DEFAULT '',
    backend            VARCHAR(32)  NOT NULL DEFAULT '',
    started_at         BIGINT       NOT NULL,
    heartbeat_at       BIGINT       NOT NULL,
    heartbeat_interval BIGINT       NOT NULL,
    consumers          MEDIUMTEXT   NOT NULL,
    PRIMARY KEY (id),
    KEY eventbus_processes_heartbeat (heartbeat_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS eventbus_consumer_states (
    consumer   VARCHAR(191) NOT NULL,
    process_id VARCHAR(64)  NOT NULL DEFAULT '',
    state      VARCHAR(16)  NOT NULL,
    updated_at BIGINT       NOT NULL,
    PRIMARY KEY (consumer, process_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS eventbus_commands (
    id          VARCHAR(26)  NOT NULL,
    kind        VARCHAR(16)  NOT NULL,
    event_id    VARCHAR(26)  NOT NULL DEFAULT '',
    consumer    VARCHAR(191) NOT NULL DEFAULT '',
    process_id  VARCHAR(64)  NOT NULL DEFAULT '',
    status      VARCHAR(16)  NOT NULL,
    claimed_by  VARCHAR(64)  NOT NULL DEFAULT '',
    result      MEDIUMTEXT   NOT NULL,
    error       MEDIUMTEXT   NOT NULL,
    created_at  BIGINT       NOT NULL,
    claimed_at  BIGINT       NOT NULL DEFAULT 0,
    finished_at BIGINT       NOT NULL DEFAULT 0,
    expires_at  BIGINT       NOT NULL,
    PRIMARY KEY (id),
    KEY eventbus_commands_status (status, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
