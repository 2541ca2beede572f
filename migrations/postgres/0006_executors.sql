-- Executors and their leases: each running host renews its row; one whose lease is older
-- than its length is presumed dead.
CREATE TABLE executors (
    executor_id TEXT PRIMARY KEY NOT NULL,
    started_at  BIGINT NOT NULL,
    renewed_at  BIGINT NOT NULL,
    lease_ms    BIGINT NOT NULL
);
