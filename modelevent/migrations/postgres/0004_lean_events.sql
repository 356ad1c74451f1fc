-- Lean ModelEvents. A delivery that succeeds at its first attempt is one row and nothing
-- else: the latest attempt's start and duration live in the row (started_at,
-- duration_us), and eventbus_attempts keeps the history only of deliveries that failed
-- or took more than one attempt. The indexes are the ones the console and CLI queries
-- use; rare values get partial indexes, so a succeeded or published row writes only its
-- heap tuple, the primary key, the natural key, the topic, and (consumed) the handler
-- and (with a model) the model index. docs/performance.md shows the query plans.
-- The natural key is (message_uuid, handler): a produced row has no handler, a consumed
-- row always has one, so the direction adds nothing to it.
-- trace_id is the W3C trace id of the message's trace (hex), empty without tracing.
-- meta_columns says which metadata keys the stored metadata leaves out because a column
-- holds their value (bit 1 correlation_id, 2 model, 4 object id, 8 change; bit 16: the correlation id is the message UUID, and the
-- correlation_id column is left empty). Existing
-- rows get the start and duration of their latest recorded attempt; the attempt rows
-- of clean deliveries go.
ALTER TABLE eventbus_events ADD COLUMN IF NOT EXISTS started_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE eventbus_events ADD COLUMN IF NOT EXISTS duration_us BIGINT NOT NULL DEFAULT 0;
ALTER TABLE eventbus_events ADD COLUMN IF NOT EXISTS meta_columns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE eventbus_events ADD COLUMN IF NOT EXISTS trace_id VARCHAR(32) NOT NULL DEFAULT '';
UPDATE eventbus_events e SET started_at = a.started_at, duration_us = a.duration_us
FROM (SELECT DISTINCT ON (message_uuid, direction, handler) message_uuid, direction, handler, started_at, duration_us
      FROM eventbus_attempts ORDER BY message_uuid, direction, handler, id DESC) a
WHERE a.message_uuid = e.message_uuid AND a.direction = e.direction AND a.handler = e.handler;
DELETE FROM eventbus_attempts a USING eventbus_events e
WHERE e.message_uuid = a.message_uuid AND e.direction = a.direction AND e.handler = a.handler
AND e.attempts = 1 AND e.last_error = '' AND e.status IN ('succeeded', 'published');
ALTER TABLE eventbus_events DROP CONSTRAINT IF EXISTS eventbus_events_natural_key;
CREATE UNIQUE INDEX IF NOT EXISTS eventbus_events_natural_key ON eventbus_events (message_uuid, handler);
DROP INDEX IF EXISTS eventbus_events_handler;
DROP INDEX IF EXISTS eventbus_events_status;
DROP INDEX IF EXISTS eventbus_events_model;
DROP INDEX IF EXISTS eventbus_events_object;
DROP INDEX IF EXISTS eventbus_events_correlation_id;
CREATE INDEX eventbus_events_handler ON eventbus_events (handler, id) WHERE handler <> '';
CREATE INDEX eventbus_events_status ON eventbus_events (status, id) WHERE status NOT IN ('succeeded', 'published');
CREATE INDEX eventbus_events_model ON eventbus_events (model, id) WHERE model <> '';
CREATE INDEX eventbus_events_object ON eventbus_events (model, object_id, id) WHERE object_id <> '';
CREATE INDEX eventbus_events_correlation_id ON eventbus_events (correlation_id, id) WHERE correlation_id <> '';
CREATE INDEX IF NOT EXISTS eventbus_events_trace_id ON eventbus_events (trace_id, id) WHERE trace_id <> '';
