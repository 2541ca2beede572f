-- Trap policies: how many traps of one class came in a row (the per-class bound counts those),
-- and the workflow's own memory limit when a policy grew it or an operator set it on resume
-- (NULL: its instance's limit).
ALTER TABLE workflow_status ADD COLUMN trap_streak BIGINT NOT NULL DEFAULT 0;
ALTER TABLE workflow_status ADD COLUMN memory_limit BIGINT NULL;
