-- Lean ModelEvents. A delivery that succeeds at its first attempt is one row and nothing
-- else: the latest attempt's start and duration live in the row (started_at,
-- duration_us), and eventbus_attempts keeps the history only of deliveries that failed
-- or took more than one attempt. MySQL has no partial indexes, so the indexes stay as
-- they are. meta_columns says which metadata keys the stored metadata leaves out
-- because a column holds their value (bit 1 correlation_id, 2 model, 4 object id, 8
-- change; bit 16: the correlation id is the message UUID, and the correlation_id
-- column is left empty). Existing rows get the start and duration of their latest recorded attempt;
-- the attempt rows of clean deliveries go.
--
-- MySQL DDL is not transactional and MySQL 8 has no ADD COLUMN IF NOT EXISTS: each
-- change is guarded by a look at information_schema (see 0003), and the copy of the
-- attempt times is re-runnable.
SET @eventbus_ddl = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE eventbus_events ADD COLUMN started_at BIGINT NOT NULL DEFAULT 0, ADD COLUMN duration_us BIGINT NOT NULL DEFAULT 0, ADD COLUMN meta_columns INT NOT NULL DEFAULT 0, ADD COLUMN trace_id VARCHAR(32) NOT NULL DEFAULT \'\', ADD INDEX eventbus_events_trace_id (trace_id, id)',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'eventbus_events' AND column_name = 'started_at');
PREPARE eventbus_stmt FROM @eventbus_ddl;
EXECUTE eventbus_stmt;
DEALLOCATE PREPARE eventbus_stmt;
UPDATE eventbus_events e
JOIN eventbus_attempts a ON a.id = (SELECT MAX(a2.id) FROM eventbus_attempts a2
    WHERE a2.message_uuid = e.message_uuid AND a2.direction = e.direction AND a2.handler = e.handler)
SET e.started_at = a.started_at, e.duration_us = a.duration_us
WHERE e.started_at = 0;
DELETE a FROM eventbus_attempts a JOIN eventbus_events e
ON e.message_uuid = a.message_uuid AND e.direction = a.direction AND e.handler = a.handler
WHERE e.attempts = 1 AND e.last_error = '' AND e.status IN ('succeeded', 'published');
