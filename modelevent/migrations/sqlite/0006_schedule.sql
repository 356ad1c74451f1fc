-- Scheduled work and run-once claims. eventbus_schedule holds what a live bus process
-- must do at a time: a scheduled retry of a consumed message (kind 'retry', consumer
-- set) or a delayed publish of a produced row in status 'scheduled' (kind 'publish',
-- consumer ''). next_attempt_at is when it is due; a process claims a due entry with
-- one conditional UPDATE that moves next_attempt_at to the end of its claim, so a
-- process that dies mid-attempt leaves an entry that is due again when the claim
-- lapses. The rows of eventbus_events are not indexed for this: the hot path stays as
-- it is, and the due-claim query reads only this small table through
-- eventbus_schedule_due. eventbus_claims is the claim an idempotent consumer takes on a
-- (message, handler) before its handler runs, so concurrent duplicate deliveries run it
-- once. duplicates counts the deliveries of a message acked without running the
-- handler because its row had already succeeded. Existing rows are kept with
-- duplicates 0.
ALTER TABLE eventbus_events ADD COLUMN duplicates INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS eventbus_schedule (
    message_uuid    VARCHAR(64)  NOT NULL,
    consumer        VARCHAR(191) NOT NULL DEFAULT '',
    kind            VARCHAR(16)  NOT NULL,
    event_id        VARCHAR(26)  NOT NULL DEFAULT '',
    topic           VARCHAR(255) NOT NULL DEFAULT '',
    next_attempt_at BIGINT       NOT NULL,
    attempts        INTEGER      NOT NULL DEFAULT 0,
    claimed_by      VARCHAR(64)  NOT NULL DEFAULT '',
    last_error      TEXT         NOT NULL DEFAULT '',
    created_at      BIGINT       NOT NULL,
    updated_at      BIGINT       NOT NULL,
    PRIMARY KEY (message_uuid, consumer)
);
CREATE INDEX IF NOT EXISTS eventbus_schedule_due ON eventbus_schedule (next_attempt_at);
CREATE TABLE IF NOT EXISTS eventbus_claims (
    message_uuid VARCHAR(64)  NOT NULL,
    handler      VARCHAR(191) NOT NULL,
    holder       VARCHAR(64)  NOT NULL,
    expires_at   BIGINT       NOT NULL,
    PRIMARY KEY (message_uuid, handler)
);
