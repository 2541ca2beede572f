-- Each host looks every 200 ms for its executions having been cancelled elsewhere: by the
-- cancels since its last look, which this index holds alone, not by every workflow it runs.
CREATE INDEX workflow_status_cancelled ON workflow_status (updated_at) WHERE status = 'CANCELLED';
