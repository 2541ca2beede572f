-- Ownership epochs: every change of who runs a workflow (an execution begun, a claim, an
-- adoption, a resume) adds one, and every checkpoint write names the epoch it was begun under.
-- A paused host whose work was adopted meanwhile holds an old epoch, and its writes are refused.
ALTER TABLE workflow_status ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0;
