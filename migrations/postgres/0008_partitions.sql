-- Partitioned queues: a workflow's partition (a tenant, say) within its queue; a partitioned
-- queue's limits hold per partition, and its dispatch takes partitions in turn.
ALTER TABLE workflow_status ADD COLUMN partition_key TEXT;
CREATE INDEX workflow_status_queue_partition ON workflow_status (queue_name, partition_key)
    WHERE status IN ('ENQUEUED', 'PENDING');
