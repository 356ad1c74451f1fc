-- Model-change events: which object of the model an event is about, and what happened
-- to it (created, updated, deleted). "Every event about order 42" is an index range.
--
-- MySQL DDL is not transactional and MySQL 8 has no ADD COLUMN IF NOT EXISTS, so each
-- change is guarded by a look at information_schema and run as a prepared statement:
-- a migration interrupted half-way is completed by the next run. Migrate runs these on
-- one connection, which keeps the session variable.
SET @eventbus_ddl = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE eventbus_events ADD COLUMN object_id VARCHAR(191) NOT NULL DEFAULT ''''',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'eventbus_events' AND column_name = 'object_id');
PREPARE eventbus_stmt FROM @eventbus_ddl;
EXECUTE eventbus_stmt;
DEALLOCATE PREPARE eventbus_stmt;
SET @eventbus_ddl = (SELECT IF(COUNT(*) = 0,
    'ALTER TABLE eventbus_events ADD COLUMN change_type VARCHAR(16) NOT NULL DEFAULT ''''',
    'DO 0')
    FROM information_schema.columns
    WHERE table_schema = DATABASE() AND table_name = 'eventbus_events' AND column_name = 'change_type');
PREPARE eventbus_stmt FROM @eventbus_ddl;
EXECUTE eventbus_stmt;
DEALLOCATE PREPARE eventbus_stmt;
SET @eventbus_ddl = (SELECT IF(COUNT(*) = 0,
    'CREATE INDEX eventbus_events_object ON eventbus_events (model, object_id, id)',
    'DO 0')
    FROM information_schema.statistics
    WHERE table_schema = DATABASE() AND table_name = 'eventbus_events' AND index_name = 'eventbus_events_object');
PREPARE eventbus_stmt FROM @eventbus_ddl;
EXECUTE eventbus_stmt;
DEALLOCATE PREPARE eventbus_stmt;
