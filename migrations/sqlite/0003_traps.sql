-- Traps of the workflow's own instances, counted apart from executions: recoveries after a
-- host crash or restart must not use up the bound meant for a workflow that keeps trapping.
ALTER TABLE workflow_status ADD COLUMN traps INTEGER NOT NULL DEFAULT 0;
