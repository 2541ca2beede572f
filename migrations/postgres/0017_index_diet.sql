-- Index diet: each index holds only the rows its queries ask for, so the writes that move a
-- workflow through its life (start, claim, end) touch fewer indexes, and every batch's commit
-- writes fewer pages.
-- Recovery, leases and adoption ask only for the PENDING workflows of an executor.
DROP INDEX workflow_status_status_executor;
CREATE INDEX workflow_status_pending_executor
    ON workflow_status (executor_id, created_at) WHERE status = 'PENDING';
-- Retention asks only for ended workflows, by age.
DROP INDEX workflow_status_updated_at;
CREATE INDEX workflow_status_ended
    ON workflow_status (updated_at)
    WHERE status IN ('SUCCESS', 'ERROR', 'CANCELLED', 'MAX_RECOVERY_ATTEMPTS_EXCEEDED');
-- Most workflows have no parent.
DROP INDEX workflow_status_parent;
CREATE INDEX workflow_status_parent
    ON workflow_status (parent_workflow_id) WHERE parent_workflow_id IS NOT NULL;
-- Rate limits count the starts of a queue: only started workflows of a queue.
DROP INDEX workflow_status_queue_started;
CREATE INDEX workflow_status_queue_started
    ON workflow_status (queue_name, started_at)
    WHERE queue_name IS NOT NULL AND started_at IS NOT NULL;
