-- The message types a component declares for its topics (`#[topic]`): JSON of
-- [{"name", "type_name", "schema"}], read when a message is sent to one of its workflows.
-- NULL for a component stored before, which declares none.
ALTER TABLE components ADD COLUMN topics TEXT;
