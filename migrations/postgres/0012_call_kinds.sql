-- Each recorded call's kind (step, sleep, send, child, patch, ...) and the digest of the
-- arguments the host saw, so a replay checks that new code makes the same call with the same
-- arguments. Rows written before stay NULL and are checked by name only.
ALTER TABLE operation_outputs ADD COLUMN kind TEXT;
ALTER TABLE operation_outputs ADD COLUMN args TEXT;
