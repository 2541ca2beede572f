-- Reprise system database for Postgres, modelled on DBOS's system tables: the same tables,
-- columns and indexes as SQLite's 0001_initial.sql and 0002_queues.sql together.
--
-- Every value (inputs, outputs, config, step failures) is JSON stored as TEXT, so it reads back
-- exactly as written, as in SQLite. Timestamps are milliseconds since the Unix epoch (BIGINT).

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
    executions            BIGINT  NOT NULL DEFAULT 0,
    max_recovery_attempts BIGINT  NOT NULL,
    created_at            BIGINT  NOT NULL,
    updated_at            BIGINT  NOT NULL,
    -- The queue the workflow waits on; NULL for a workflow started directly.
    queue_name            TEXT    NULL,
    -- Dispatch order within a queue: lower first, then oldest first.
    priority              INTEGER NOT NULL DEFAULT 0,
    -- Caller-chosen key: at most one active (ENQUEUED or PENDING) workflow per queue may hold it.
    deduplication_id      TEXT    NULL,
    -- When the first execution began (ms): the dispatch of a queued workflow or a direct start.
    -- Rate limits count the starts in a window by it.
    started_at            BIGINT  NULL,
    -- The workflow that started this one as a child, if any.
    parent_workflow_id    TEXT    NULL,
    -- Insertion order, the tie-break between rows created in the same millisecond (SQLite's
    -- rowid plays this part there): keeps queues FIFO and listings stable.
    seq                   BIGINT  GENERATED ALWAYS AS IDENTITY
);

-- Recovery: PENDING workflows of one executor, oldest first.
CREATE INDEX workflow_status_status_executor
    ON workflow_status (status, executor_id, created_at);
-- Listings, newest first.
CREATE INDEX workflow_status_created_at ON workflow_status (created_at);
CREATE INDEX workflow_status_name ON workflow_status (name);
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

-- The checkpoint of each step, by its position in the workflow's call order.
CREATE TABLE operation_outputs (
    workflow_id  TEXT    NOT NULL
                 REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    function_id  BIGINT  NOT NULL,
    name         TEXT    NOT NULL,
    -- JSON of the value, when the step succeeded.
    output       TEXT,
    -- JSON of the StepFailureRecord, when it did not.
    error        TEXT,
    attempts     BIGINT  NOT NULL,
    started_at   BIGINT  NOT NULL,
    completed_at BIGINT  NOT NULL,
    CONSTRAINT operation_outputs_pkey PRIMARY KEY (workflow_id, function_id)
);

-- Workflow code, pinned by content digest so a recovery runs the exact bytes that started it.
CREATE TABLE components (
    digest     TEXT    PRIMARY KEY NOT NULL,
    bytes      BYTEA   NOT NULL,
    size       BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL
);
