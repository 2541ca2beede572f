//! What workflows wait for, as stored: messages sent to a workflow's topics, the events it
//! publishes, the streams it writes, and the changes that wake waiters in other processes.

use serde::{Deserialize, Serialize};

/// A message about to be sent.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The workflow it is for.
    pub destination_id: String,
    /// The topic its `recv` names.
    pub topic: String,
    /// JSON text.
    pub message: String,
    /// What makes the send happen once: a second send with the same id to the same
    /// destination is stored no more (the sending position, or an idempotency key).
    pub message_id: String,
}

/// A message as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    /// Send order across the database.
    pub seq: i64,
    /// The workflow it is for.
    pub destination_id: String,
    /// Its topic.
    pub topic: String,
    /// JSON text.
    pub message: String,
    /// The send's idempotency key (or sending position).
    pub message_id: String,
    /// When it was sent (ms since the epoch).
    pub created_at: i64,
    /// When the destination received it, if it did.
    pub consumed_at: Option<i64>,
    /// The position of the `recv` that received it.
    pub consumed_by: Option<u32>,
}

/// The latest value of one event of a workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    /// The workflow that published it.
    pub workflow_id: String,
    /// Its key.
    pub key: String,
    /// JSON text.
    pub value: String,
    /// When it was last set (ms since the epoch).
    pub updated_at: i64,
}

/// One value of a stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamEntry {
    /// Its position in the stream, from 0.
    pub offset: u64,
    /// JSON text.
    pub value: String,
    /// When it was written (ms since the epoch).
    pub created_at: i64,
}

/// A read of a stream from an offset.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRead {
    /// The values from the offset asked, in order.
    pub entries: Vec<StreamEntry>,
    /// No value will follow the last one: the stream was closed, or its workflow ended.
    pub closed: bool,
}

/// A stream of a workflow, for listings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamInfo {
    /// Its key.
    pub key: String,
    /// How many values it holds.
    pub values: u64,
    /// Whether it was closed.
    pub closed: bool,
}

/// Something a waiter may be waiting for happened: what other processes learn by polling
/// [`crate::Store::changes_since`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Change {
    /// A message was sent to the workflow's topic.
    Message {
        /// The destination.
        workflow_id: String,
        /// The topic.
        topic: String,
    },
    /// The workflow set an event.
    Event {
        /// The workflow.
        workflow_id: String,
        /// The event's key.
        key: String,
    },
    /// The workflow wrote to (or closed) a stream.
    Stream {
        /// The workflow.
        workflow_id: String,
        /// The stream's key.
        key: String,
    },
    /// A workflow was enqueued on the queue, or one of its workflows ended (a slot freed):
    /// its dispatchers claim again. Only pushed (Postgres), as cancels are.
    Queued {
        /// The queue.
        queue: String,
    },
    /// The workflow was cancelled: the host running it stops it. Only pushed (Postgres);
    /// polling hosts find cancels by their own poll of what they run.
    Cancelled {
        /// The workflow.
        workflow_id: String,
    },
}

/// How a wait's outcome is recorded: defined with the other recorded formats.
pub use reprise_protocol::recorded::Waited;
