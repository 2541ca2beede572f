-- Reprise system database for SQLite, modelled on DBOS's system tables.
--
-- Every value (inputs, outputs, config, step failures) is JSON stored as TEXT so the database
-- stays readable with the `sqlite3` shell. Timestamps are milliseconds since the Unix epoch.

-- One row per workflow: its identity, the code it runs, and how far its lifecycle has got.
CREATE TABLE workflow_status (
    workflow_id           TEXT    PRIMARY KEY NOT NULL,
    name                  TEXT    NOT NULL,
    -- ENQUEUED | PENDING | SUCCESS | ERROR | CANCELLED | MAX_RECOVERY_ATTEMPTS_EXCEEDED
    status                TEXT    NOT NULL,
    input                 TEXT    NOT NULL,
    output                TEXT,
    error                 TEXT,
    -- Class and message of the trap that ended the last execution, if one did.
    trap_class            TEXT,
    trap_message          TEXT,
    -- The executor (host process) that owns the workflow and recovers it after a crash.
    executor_id           TEXT    NOT NULL,
    -- Content digest of the component the workflow runs (see `components`).
    app_version           TEXT    NOT NULL,
    instance              TEXT    NOT NULL,
    config                TEXT    NOT NULL,
    -- Executions begun: 1 after the first start, n+1 after n recoveries.
    executions            INTEGER NOT NULL DEFAULT 0,
    max_recovery_attempts INTEGER NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);

-- Recovery: PENDING workflows of one executor, oldest first.
CREATE INDEX workflow_status_status_executor
    ON workflow_status (status, executor_id, created_at);
-- Listings, newest first.
CREATE INDEX workflow_status_created_at ON workflow_status (created_at);
CREATE INDEX workflow_status_name ON workflow_status (name);

-- The checkpoint of each step, by its position in the workflow's call order.
CREATE TABLE operation_outputs (
    workflow_id  TEXT    NOT NULL
                 REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    function_id  INTEGER NOT NULL,
    name         TEXT    NOT NULL,
    -- JSON of the value, when the step succeeded.
    output       TEXT,
    -- JSON of the StepFailureRecord, when it did not.
    error        TEXT,
    attempts     INTEGER NOT NULL,
    started_at   INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    PRIMARY KEY (workflow_id, function_id)
);

-- Workflow code, pinned by content digest so a recovery runs the exact bytes that started it.
CREATE TABLE components (
    digest     TEXT    PRIMARY KEY NOT NULL,
    bytes      BLOB    NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
