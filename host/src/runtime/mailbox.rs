//! Messages, events and streams from outside a workflow: what the admin API, the CLI and the
//! client do with them. Writes wake this process's waiters at once (other processes poll or
//! listen); reads that wait register before they read, so nothing lands unseen in between.

use std::sync::Arc;
use std::time::Duration;

use crate::runtime::error::RuntimeError;
use crate::runtime::ids::{check_key, fresh_random, validate_workflow_id};
use crate::runtime::topics::TopicChecker;
use crate::runtime::waiting::signals::Signals;
use reprise_store::{Change, EventRecord, NewMessage, Store, StreamRead};

/// The most stream values one read returns.
pub const MAX_STREAM_READ: u32 = 1000;

/// How often a reader with nothing new reads again: a workflow that ends (or starts) in
/// another process wakes no one here.
const REREAD: Duration = Duration::from_millis(250);

/// Messages, events and streams of one database, as seen from outside the workflows: a
/// runtime's ([`crate::runtime::Runtime::mailbox`]), or one of its own for commands that run
/// no workflow.
#[derive(Clone)]
pub struct Mailbox {
    store: Arc<dyn Store>,
    signals: Arc<Signals>,
    topics: Arc<TopicChecker>,
}

impl Mailbox {
    /// A mailbox on `store` that hears of other processes' writes by polling.
    pub fn new(store: Arc<dyn Store>) -> Mailbox {
        Mailbox {
            topics: Arc::new(TopicChecker::new(store.clone())),
            store,
            signals: Arc::default(),
        }
    }

    pub(crate) fn with_signals(
        store: Arc<dyn Store>,
        signals: Arc<Signals>,
        topics: Arc<TopicChecker>,
    ) -> Mailbox {
        Mailbox {
            store,
            signals,
            topics,
        }
    }

    /// Sends a message to a workflow's topic from outside any workflow. With an
    /// `idempotency_key`, a second send with the same key to the same workflow stores nothing
    /// (and returns false). An unknown workflow, or a message that does not match the type its
    /// component declares for the topic, is an error and nothing is stored.
    pub async fn send_message(
        &self,
        workflow_id: &str,
        topic: &str,
        message: &str,
        idempotency_key: Option<&str>,
    ) -> Result<bool, RuntimeError> {
        validate_workflow_id(workflow_id)?;
        check_key("topic", topic).map_err(RuntimeError::InvalidInput)?;
        serde_json::from_str::<serde::de::IgnoredAny>(message)
            .map_err(|e| RuntimeError::InvalidInput(format!("message is not JSON: {e}")))?;
        if let Err(refused) = self.topics.check(workflow_id, topic, message).await? {
            return Err(RuntimeError::MessageRefused(refused));
        }
        let message_id = match idempotency_key {
            Some(key) => {
                check_key("idempotency key", key).map_err(RuntimeError::InvalidInput)?;
                format!("key:{key}")
            }
            None => format!("random:{:016x}", fresh_random()),
        };
        let new = NewMessage {
            destination_id: workflow_id.to_string(),
            topic: topic.to_string(),
            message: message.to_string(),
            message_id,
        };
        let stored = self.store.send_message(&new, None).await?;
        self.signals.wake(&Change::Message {
            workflow_id: new.destination_id,
            topic: new.topic,
        });
        Ok(stored)
    }

    /// The latest value of a workflow's event, waiting up to `timeout` for it to be set (and
    /// for the workflow to exist: an id still unknown when the timeout ends is an error).
    pub async fn get_event(
        &self,
        workflow_id: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<EventRecord>, RuntimeError> {
        validate_workflow_id(workflow_id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let change = Change::Event {
            workflow_id: workflow_id.to_string(),
            key: key.to_string(),
        };
        loop {
            let set = self.signals.register(&change, &self.store);
            if let Some(event) = self.store.get_event(workflow_id, key).await? {
                return Ok(Some(event));
            }
            let known = self.store.get_workflow(workflow_id).await?.is_some();
            match (known, tokio::time::Instant::now() >= deadline) {
                (false, true) => {
                    return Err(RuntimeError::UnknownWorkflowId(workflow_id.to_string()));
                }
                (true, true) => return Ok(None),
                // Its start may be on its way (a `run &`, a webhook before its workflow):
                // look again, since its creation wakes no one.
                (false, false) => tokio::select! {
                    _ = set => {}
                    _ = tokio::time::sleep(REREAD) => {}
                    _ = tokio::time::sleep_until(deadline) => {}
                },
                (true, false) => {
                    let _ = tokio::time::timeout_at(deadline, set).await;
                }
            }
        }
    }

    /// Values of a workflow's stream from `offset` (at most [`MAX_STREAM_READ`]), waiting up
    /// to `timeout` for one when none is there yet; `closed` once none will follow.
    pub async fn read_stream(
        &self,
        workflow_id: &str,
        key: &str,
        offset: u64,
        timeout: Duration,
    ) -> Result<StreamRead, RuntimeError> {
        validate_workflow_id(workflow_id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        let change = Change::Stream {
            workflow_id: workflow_id.to_string(),
            key: key.to_string(),
        };
        loop {
            let written = self.signals.register(&change, &self.store);
            let store = &self.store;
            let read = store
                .read_stream(workflow_id, key, offset, MAX_STREAM_READ)
                .await?;
            if !read.entries.is_empty() || read.closed || tokio::time::Instant::now() >= deadline {
                return Ok(read);
            }
            tokio::select! {
                _ = written => {}
                _ = tokio::time::sleep(REREAD) => {}
                _ = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
