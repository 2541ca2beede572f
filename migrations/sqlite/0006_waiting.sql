-- Waiting for the world: messages to a workflow's topics, the events it publishes and the
-- streams it writes (DBOS's notifications, workflow_events and streams), and the columns of
-- workflow deadlines and delayed starts.

-- Messages, in send order per destination and topic. A message is consumed by the
-- destination's recv, which records it at its position in the same commit, so it is received
-- exactly once; consumed rows stay (with that position) until the workflow is deleted.
CREATE TABLE notifications (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    destination_id TEXT    NOT NULL
                   REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    topic          TEXT    NOT NULL,
    -- JSON of the message.
    message        TEXT    NOT NULL,
    -- What makes a send happen once: the sending workflow's position, or an outside sender's
    -- idempotency key (a fresh random id without one).
    message_id     TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    consumed_at    INTEGER NULL,
    -- The position of the destination's recv that consumed it.
    consumed_by    INTEGER NULL
);
CREATE UNIQUE INDEX notifications_message_id ON notifications (destination_id, message_id);
-- recv: the oldest unconsumed message of a destination's topic.
CREATE INDEX notifications_waiting
    ON notifications (destination_id, topic, seq) WHERE consumed_at IS NULL;
-- Wake-ups across processes: messages sent since a moment.
CREATE INDEX notifications_created ON notifications (created_at) WHERE consumed_at IS NULL;

-- The latest value of each event a workflow published.
CREATE TABLE workflow_events (
    workflow_id TEXT    NOT NULL
                REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    -- JSON of the value.
    value       TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, key)
);
CREATE INDEX workflow_events_updated ON workflow_events (updated_at);

-- The values a workflow appended to its streams, by position from 0; a row without a value
-- closes the stream.
CREATE TABLE streams (
    workflow_id TEXT    NOT NULL
                REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    position    INTEGER NOT NULL,
    value       TEXT    NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, key, position)
);
CREATE INDEX streams_created ON streams (created_at);

-- A workflow's time limit (ms) and the deadline it gives: set when its first execution
-- begins, or inherited from its parent, whichever is earlier. Past it the workflow is
-- cancelled, also when it passed while no host ran.
ALTER TABLE workflow_status ADD COLUMN timeout_ms INTEGER NULL;
ALTER TABLE workflow_status ADD COLUMN deadline_at INTEGER NULL;
-- A delayed start: the workflow stays ENQUEUED until this moment (ms).
ALTER TABLE workflow_status ADD COLUMN not_before INTEGER NULL;
CREATE INDEX workflow_status_due
    ON workflow_status (not_before) WHERE status = 'ENQUEUED' AND queue_name IS NULL;

-- Schedules: a cron expression (with seconds, UTC) that starts a workflow at each of its
-- times. Each firing's workflow id is made of the schedule's name and the scheduled time, so
-- hosts sharing the database start it once however many of them fire it.
CREATE TABLE schedules (
    name        TEXT    PRIMARY KEY NOT NULL,
    cron        TEXT    NOT NULL,
    workflow    TEXT    NOT NULL,
    instance    TEXT    NOT NULL,
    -- JSON of the input each firing gets.
    input       TEXT    NOT NULL,
    queue_name  TEXT    NULL,
    -- After downtime: 'skip' the firings missed, or run 'all' of them.
    catch_up    TEXT    NOT NULL,
    paused      INTEGER NOT NULL DEFAULT 0,
    -- The scheduled time (ms) of the latest firing; the next is the expression's first time
    -- after it.
    last_fired  INTEGER NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- The time a scheduled firing was due (ms), which its workflow reads.
ALTER TABLE workflow_status ADD COLUMN scheduled_at INTEGER NULL;
