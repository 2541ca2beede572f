-- Step limits (`[instances.X.steps.NAME] concurrency, rate`): a row per execution of a limited
-- step, taken before its body runs and released when its outcome is recorded. A row counts
-- against `concurrency` while unreleased and its workflow is PENDING under the epoch that
-- took it (so a dead host's rows free themselves on recovery), against `rate` while it was
-- taken within the window. Rows no limit can count are deleted by the next take.
CREATE TABLE step_slots (
    slot        BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance    TEXT    NOT NULL,
    step        TEXT    NOT NULL,
    workflow_id TEXT    NOT NULL REFERENCES workflow_status (workflow_id) ON DELETE CASCADE,
    epoch       BIGINT  NOT NULL,
    taken_at    BIGINT  NOT NULL,
    released_at BIGINT  NULL
);
CREATE INDEX step_slots_by_step ON step_slots (instance, step, taken_at);
