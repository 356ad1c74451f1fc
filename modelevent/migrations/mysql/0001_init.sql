-- eventbus ModelEvents: one row per (message, direction, handler) and its attempts.
-- Times are unix microseconds UTC. MySQL DDL is not transactional, so every statement
-- here is idempotent (CREATE TABLE IF NOT EXISTS with inline indexes).
CREATE TABLE IF NOT EXISTS eventbus_events (
    id             VARCHAR(26)  NOT NULL,
    message_uuid   VARCHAR(64)  NOT NULL,
    direction      VARCHAR(16)  NOT NULL,
    handler        VARCHAR(191) NOT NULL DEFAULT '',
    topic          VARCHAR(255) NOT NULL DEFAULT '',
    model          VARCHAR(255) NOT NULL DEFAULT '',
    backend        VARCHAR(32)  NOT NULL DEFAULT '',
    payload        LONGBLOB     NOT NULL,
    metadata       MEDIUMTEXT   NOT NULL,
    status         VARCHAR(16)  NOT NULL,
    attempts       INT          NOT NULL DEFAULT 0,
    last_error     MEDIUMTEXT   NOT NULL,
    correlation_id VARCHAR(255) NOT NULL DEFAULT '',
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY eventbus_events_natural_key (message_uuid, direction, handler),
    KEY eventbus_events_status (status, id),
    KEY eventbus_events_topic (topic, id),
    KEY eventbus_events_model (model, id),
    KEY eventbus_events_handler (handler, id),
    KEY eventbus_events_correlation_id (correlation_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS eventbus_attempts (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    message_uuid VARCHAR(64)  NOT NULL,
    direction    VARCHAR(16)  NOT NULL,
    handler      VARCHAR(191) NOT NULL DEFAULT '',
    started_at   BIGINT       NOT NULL,
    duration_us  BIGINT       NOT NULL,
    error        MEDIUMTEXT   NOT NULL,
    PRIMARY KEY (id),
    KEY eventbus_attempts_event (message_uuid, direction, handler, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
