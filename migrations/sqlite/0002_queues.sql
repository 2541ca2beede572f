-- Queues, deduplication and child workflows.
--
-- A workflow started on a queue is inserted ENQUEUED and waits until an executor with a free
-- slot claims it (status PENDING); queues may cap how many run at once across executors and how
-- many start per time window.

-- The queue the workflow waits on; NULL for a workflow started directly.
ALTER TABLE workflow_status ADD COLUMN queue_name TEXT NULL;
-- Dispatch order within a queue: lower first, then oldest first.
ALTER TABLE workflow_status ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
-- Caller-chosen key: at most one active (ENQUEUED or PENDING) workflow per queue may hold it.
ALTER TABLE workflow_status ADD COLUMN deduplication_id TEXT NULL;
-- When the first execution began (ms): the dispatch of a queued workflow or a direct start.
-- Rate limits count the starts in a window by it.
ALTER TABLE workflow_status ADD COLUMN started_at INTEGER NULL;
-- The workflow that started this one as a child, if any.
ALTER TABLE workflow_status ADD COLUMN parent_workflow_id TEXT NULL;

-- Dispatch: the ENQUEUED rows of a queue in priority, then FIFO order; also counts PENDING rows
-- for the concurrency limit.
CREATE INDEX workflow_status_queue_dispatch
    ON workflow_status (queue_name, status, priority, created_at);
-- Deduplication only binds while the first workflow is active, so a finished one frees its key.
CREATE UNIQUE INDEX workflow_status_queue_dedup
    ON workflow_status (queue_name, deduplication_id)
    WHERE deduplication_id IS NOT NULL AND status IN ('ENQUEUED', 'PENDING');
-- Rate limits: starts in a queue since a moment.
CREATE INDEX workflow_status_queue_started
    ON workflow_status (queue_name, started_at);
-- A parent's children.
CREATE INDEX workflow_status_parent ON workflow_status (parent_workflow_id);
