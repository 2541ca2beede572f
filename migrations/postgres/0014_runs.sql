-- continue_as_new: a workflow starts again under its id with a new input; each finished run
-- is kept here, its history as one JSON array, no longer replayed. `run` numbers the current
-- run, so ids derived from positions (children, sent messages, idempotency keys) differ
-- between runs.
ALTER TABLE workflow_status ADD COLUMN run BIGINT NOT NULL DEFAULT 0;
CREATE TABLE workflow_runs (
    workflow_id TEXT    NOT NULL
                REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    run         BIGINT  NOT NULL,
    app_version TEXT    NOT NULL,
    input       TEXT    NOT NULL,
    next_input  TEXT    NOT NULL,
    steps       TEXT    NOT NULL,
    started_at  BIGINT,
    ended_at    BIGINT  NOT NULL,
    PRIMARY KEY (workflow_id, run)
);
