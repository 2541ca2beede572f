-- Quotas: what a workflow holds in the messages it sent, found by the range of their ids
-- (`<sender>#<position>`), compared byte by byte.
CREATE INDEX notifications_sent_by ON notifications ((message_id COLLATE "C"));
