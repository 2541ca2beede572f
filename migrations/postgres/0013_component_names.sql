-- The configured component a stored version belongs to, so a server lists each component's
-- versions side by side (NULL for one stored before, or by a plain `reprise run`).
ALTER TABLE components ADD COLUMN name TEXT;
