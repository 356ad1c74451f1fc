-- Model-change events: which object of the model an event is about, and what happened
-- to it (created, updated, deleted). "Every event about order 42" is an index range.
ALTER TABLE eventbus_events ADD COLUMN object_id VARCHAR(191) NOT NULL DEFAULT '';
ALTER TABLE eventbus_events ADD COLUMN change_type VARCHAR(16) NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS eventbus_events_object ON eventbus_events (model, object_id, id);
