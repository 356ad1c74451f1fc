-- Lean ModelEvents. A delivery that succeeds at its first attempt is one row and nothing
-- else: the latest attempt's start and duration live in the row (started_at,
-- duration_us), and eventbus_attempts keeps the history only of deliveries that failed
-- or took more than one attempt. The table is clustered on its time-ordered id
-- (WITHOUT ROWID: one B-tree instead of a rowid table plus a primary-key index), and
-- the indexes are the ones the console and CLI queries use; rare values get partial
-- indexes, so a succeeded or published row writes only its table row, the natural key,
-- the topic, and (consumed) the handler and (with a model) the model index.
-- The natural key is (message_uuid, handler): a produced row has no handler, a consumed
-- row always has one, so the direction adds nothing to it.
-- trace_id is the W3C trace id of the message's trace (hex), empty without tracing.
-- docs/performance.md shows the query plans. meta_columns says which metadata keys the
-- stored metadata leaves out because a column holds their value (bit 1 correlation_id,
-- 2 model, 4 object id, 8 change; bit 16: the correlation id is the message UUID, and the
-- correlation_id column is left empty). Existing rows are carried over with the start and
-- duration of their latest recorded attempt; the attempt rows of clean deliveries go.
CREATE TABLE eventbus_events_v4 (
    id             VARCHAR(26)  NOT NULL PRIMARY KEY,
    message_uuid   VARCHAR(64)  NOT NULL,
    direction      VARCHAR(16)  NOT NULL,
    handler        VARCHAR(191) NOT NULL DEFAULT '',
    topic          VARCHAR(255) NOT NULL DEFAULT '',
    model          VARCHAR(255) NOT NULL DEFAULT '',
    object_id      VARCHAR(191) NOT NULL DEFAULT '',
    change_type    VARCHAR(16)  NOT NULL DEFAULT '',
    backend        VARCHAR(32)  NOT NULL DEFAULT '',
    payload        BLOB         NOT NULL,
    metadata       TEXT         NOT NULL DEFAULT '{}',
    status         VARCHAR(16)  NOT NULL,
    attempts       INTEGER      NOT NULL DEFAULT 0,
    last_error     TEXT         NOT NULL DEFAULT '',
    correlation_id VARCHAR(255) NOT NULL DEFAULT '',
    created_at     BIGINT       NOT NULL,
    updated_at     BIGINT       NOT NULL,
    started_at     BIGINT       NOT NULL DEFAULT 0,
    duration_us    BIGINT       NOT NULL DEFAULT 0,
    meta_columns   INTEGER      NOT NULL DEFAULT 0,
    trace_id       VARCHAR(32)  NOT NULL DEFAULT ''
) WITHOUT ROWID;
INSERT INTO eventbus_events_v4 (id, message_uuid, direction, handler, topic, model, object_id, change_type, backend,
    payload, metadata, status, attempts, last_error, correlation_id, created_at, updated_at, started_at, duration_us)
SELECT e.id, e.message_uuid, e.direction, e.handler, e.topic, e.model, e.object_id, e.change_type, e.backend,
    e.payload, e.metadata, e.status, e.attempts, e.last_error, e.correlation_id, e.created_at, e.updated_at,
    COALESCE((SELECT a.started_at FROM eventbus_attempts a WHERE a.message_uuid = e.message_uuid
        AND a.direction = e.direction AND a.handler = e.handler ORDER BY a.id DESC LIMIT 1), 0),
    COALESCE((SELECT a.duration_us FROM eventbus_attempts a WHERE a.message_uuid = e.message_uuid
        AND a.direction = e.direction AND a.handler = e.handler ORDER BY a.id DESC LIMIT 1), 0)
FROM eventbus_events e;
DROP TABLE eventbus_events;
DELETE FROM eventbus_attempts WHERE EXISTS (SELECT 1 FROM eventbus_events_v4 e WHERE e.message_uuid = eventbus_attempts.message_uuid
    AND e.direction = eventbus_attempts.direction AND e.handler = eventbus_attempts.handler
    AND e.attempts = 1 AND e.last_error = '' AND e.status IN ('succeeded', 'published'));
ALTER TABLE eventbus_events_v4 RENAME TO eventbus_events;
CREATE UNIQUE INDEX eventbus_events_natural_key ON eventbus_events (message_uuid, handler);
CREATE INDEX eventbus_events_topic ON eventbus_events (topic, id);
CREATE INDEX eventbus_events_handler ON eventbus_events (handler, id) WHERE handler <> '';
CREATE INDEX eventbus_events_status ON eventbus_events (status, id) WHERE status NOT IN ('succeeded', 'published');
CREATE INDEX eventbus_events_model ON eventbus_events (model, id) WHERE model <> '';
CREATE INDEX eventbus_events_object ON eventbus_events (model, object_id, id) WHERE object_id <> '';
CREATE INDEX eventbus_events_correlation_id ON eventbus_events (correlation_id, id) WHERE correlation_id <> '';
CREATE INDEX eventbus_events_trace_id ON eventbus_events (trace_id, id) WHERE trace_id <> '';
