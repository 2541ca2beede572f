//! Messages, events and streams from the client's side: send to a workflow's topic, read or
//! await its events, read its streams.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::validate_workflow_id;
use crate::wire::{EventView, MessageBody, MessageSent, StreamChunk};
use crate::{Client, ClientError};

/// The longest one request waits on the server (it answers sooner, and is asked again).
const SERVER_WAIT: Duration = Duration::from_secs(30);

/// Keys travel as path segments: every byte but the unreserved ones percent-encoded.
pub(crate) fn segment(key: &str) -> String {
    const KEEP: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(key, KEEP).to_string()
}

impl Client {
    /// Sends `message` to the workflow's `topic`; it waits there until the workflow's `recv`
    /// takes it. With `idempotency_key`, a repeat (a retry after a lost answer, say) stores
    /// nothing more, so sends are retried like starts. Returns whether this call stored it.
    pub async fn send_message<M: Serialize + ?Sized>(
        &self,
        workflow_id: &str,
        topic: &str,
        message: &M,
        idempotency_key: Option<&str>,
    ) -> Result<bool, ClientError> {
        validate_workflow_id(workflow_id)?;
        // Without a key of the caller's, one is fixed here so a retry cannot send twice.
        let key = idempotency_key
            .map(str::to_string)
            .unwrap_or_else(crate::ids::new_workflow_id);
        let body = MessageBody {
            topic: topic.to_string(),
            message: serde_json::to_value(message).map_err(ClientError::Input)?,
            idempotency_key: Some(key),
        };
        let path = format!("/workflows/{workflow_id}/messages");
        let (_, sent): (u16, MessageSent) = self
            .send_retrying(|| self.request(reqwest::Method::POST, &path).json(&body))
            .await?;
        Ok(sent.stored)
    }

    /// The value of the workflow's event `key`, waiting up to `timeout` for it to be set;
    /// `None` when it is not set by then.
    pub async fn get_event<T: DeserializeOwned>(
        &self,
        workflow_id: &str,
        key: &str,
        timeout: Duration,
    ) -> Result<Option<T>, ClientError> {
        validate_workflow_id(workflow_id)?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = left.min(SERVER_WAIT);
            let path = format!(
                "/workflows/{workflow_id}/events/{}?timeout_ms={}",
                segment(key),
                wait.as_millis()
            );
            let (_, event): (u16, EventView) = self
                .send_retrying(|| {
                    self.request(reqwest::Method::GET, &path)
                        .timeout(wait + Duration::from_secs(15))
                })
                .await?;
            if let Some(value) = event.value {
                return serde_json::from_value(value)
                    .map(Some)
                    .map_err(|e| ClientError::Decode {
                        id: workflow_id.to_string(),
                        message: format!("event {key:?}: {e}"),
                    });
            }
            if left <= wait {
                return Ok(None);
            }
        }
    }

    /// Values of the workflow's stream `key` from `offset`, waiting up to `timeout` when
    /// none is there yet. Read again from `next_offset` until `closed`.
    pub async fn read_stream(
        &self,
        workflow_id: &str,
        key: &str,
        offset: u64,
        timeout: Duration,
    ) -> Result<StreamChunk, ClientError> {
        validate_workflow_id(workflow_id)?;
        let wait = timeout.min(SERVER_WAIT);
        let path = format!(
            "/workflows/{workflow_id}/streams/{}?offset={offset}&timeout_ms={}",
            segment(key),
            wait.as_millis()
        );
        Ok(self
            .send_retrying(|| {
                self.request(reqwest::Method::GET, &path)
                    .timeout(wait + Duration::from_secs(15))
            })
            .await?
            .1)
    }

    /// Every value of the stream from `offset` to its end (its close, or its workflow's end),
    /// decoded into `T`, waiting for values still to come.
    pub async fn read_stream_to_end<T: DeserializeOwned>(
        &self,
        workflow_id: &str,
        key: &str,
        mut offset: u64,
    ) -> Result<Vec<T>, ClientError> {
        let mut values = Vec::new();
        loop {
            let chunk = self
                .read_stream(workflow_id, key, offset, SERVER_WAIT)
                .await?;
            offset = chunk.next_offset;
            for value in chunk.values {
                values.push(serde_json::from_value(value.value).map_err(|e| {
                    ClientError::Decode {
                        id: workflow_id.to_string(),
                        message: format!("stream {key:?}: {e}"),
                    }
                })?);
            }
            if chunk.closed {
                return Ok(values);
            }
        }
    }
}
