-- Quotas: what a workflow holds in the messages it sent, found by their ids (`<sender>#<position>`).
CREATE INDEX notifications_sent_by ON notifications (message_id);
