-- The ownership epoch of the execution that ran a step, so its history can say whether the
-- workflow's latest execution ran it or replayed it (epochs only grow, even across a resume,
-- which restarts the execution count). NULL on rows copied by a fork and on older rows.
ALTER TABLE operation_outputs ADD COLUMN epoch BIGINT;
