-- eventbus ModelEvents: one row per (message, direction, handler) and its attempts.
-- Times are unix microseconds UTC.
CREATE TABLE IF NOT EXISTS eventbus_events (
    id             VARCHAR(26)  NOT NULL PRIMARY KEY,
    message_uuid   VARCHAR(64)  NOT NULL,
    direction      VARCHAR(16)  NOT NULL,
    handler        VARCHAR(191) NOT NULL DEFAULT '',
    topic          VARCHAR(255) NOT NULL DEFAULT '',
    model          VARCHAR(255) NOT NULL DEFAULT '',
    backend        VARCHAR(32)  NOT NULL DEFAULT '',
    payload        BLOB         NOT NULL,
    metadata       TEXT         NOT NULL DEFAULT '{}',
    status         VARCHAR(16)  NOT NULL,
    attempts       INTEGER      NOT NULL DEFAULT 0,
    last_error     TEXT         NOT NULL DEFAULT '',
    correlation_id VARCHAR(255) NOT NULL DEFAULT '',
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    CONSTRAINT eventbus_events_natural_key UNIQUE (message_uuid, direction, handler)
);
CREATE INDEX IF NOT EXISTS eventbus_events_status ON eventbus_events (status, id);
CREATE INDEX IF NOT EXISTS eventbus_events_topic ON eventbus_events (topic, id);
CREATE INDEX IF NOT EXISTS eventbus_events_model ON eventbus_events (model, id);
CREATE INDEX IF NOT EXISTS eventbus_events_handler ON eventbus_events (handler, id);
CREATE INDEX IF NOT EXISTS eventbus_events_correlation_id ON eventbus_events (correlation_id, id);

CREATE TABLE IF NOT EXISTS eventbus_attempts (
    id           INTEGER      NOT NULL PRIMARY KEY AUTOINCREMENT,
    message_uuid VARCHAR(64)  NOT NULL,
    direction    VARCHAR(16)  NOT NULL,
    handler      VARCHAR(191) NOT NULL DEFAULT '',
    started_at   BIGINT       NOT NULL,
    duration_us  BIGINT       NOT NULL,
    error        TEXT         NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS eventbus_attempts_event ON eventbus_attempts (message_uuid, direction, handler, id);
