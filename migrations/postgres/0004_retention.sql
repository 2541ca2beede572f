-- Retention deletes ended workflows by age: find the oldest without scanning every row.
CREATE INDEX workflow_status_updated_at ON workflow_status (updated_at);
