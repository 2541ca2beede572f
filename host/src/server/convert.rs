//! Store records to the wire types of `reprise_protocol::wire`, at the edge: the store keeps
//! values as JSON text, the API and `--json` show them as JSON values.

use std::collections::BTreeMap;

use reprise_protocol::wire::{
    EventView, ExecutorView, MessageView, StepFailure, StepView, StreamChunk, StreamInfoView,
    StreamValue, WorkflowView,
};
use serde::de::DeserializeOwned;

use reprise_store::{
    EventRecord, ExecutorRecord, MessageRecord, StepRecord, StoreError, StreamInfo, StreamRead,
    WorkflowRecord,
};

/// Parses a stored JSON column; a value that does not parse is a corrupt row, never a guess.
fn column<T: DeserializeOwned>(
    table: &'static str,
    owner: &str,
    name: &str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        table,
        message: format!("{owner}: {name} is not JSON: {e}"),
    })
}

/// A stored record as the API and `--json` show it; a corrupt column is an error, never a
/// guess.
pub trait ToView {
    /// The wire type.
    type View;
    /// Converts, parsing the JSON columns.
    fn to_view(self) -> Result<Self::View, StoreError>;
}

impl ToView for WorkflowRecord {
    type View = WorkflowView;

    fn to_view(self) -> Result<WorkflowView, StoreError> {
        let w = self;
        let owner = format!("workflow {}", w.id);
        let table = "workflow_status";
        let input = column(table, &owner, "input", &w.input)?;
        let output = w
            .output
            .as_deref()
            .map(|o| column(table, &owner, "output", o))
            .transpose()?;
        let config: BTreeMap<String, String> = column(table, &owner, "config", &w.config)?;
        Ok(WorkflowView {
            id: w.id,
            name: w.name,
            status: w.status,
            input,
            output,
            error: w.error,
            trap_class: w.trap_class,
            trap_message: w.trap_message,
            executor_id: w.executor_id,
            app_version: w.app_version,
            instance: w.instance,
            config,
            executions: w.executions,
            traps: w.traps,
            memory_limit: w.memory_limit,
            max_recovery_attempts: w.max_recovery_attempts,
            created_at: w.created_at,
            updated_at: w.updated_at,
            started_at: w.started_at,
            queue_name: w.queue_name,
            priority: w.priority,
            deduplication_id: w.deduplication_id,
            partition_key: w.partition_key,
            run: w.run,
            parent_workflow_id: w.parent_workflow_id,
            timeout_ms: w.timeout_ms,
            deadline_at: w.deadline_at,
            not_before: w.not_before,
        })
    }
}

impl ToView for StepRecord {
    type View = StepView;

    fn to_view(self) -> Result<StepView, StoreError> {
        let s = self;
        let owner = format!("workflow {} step {}", s.workflow_id, s.function_id);
        let output = s
            .output
            .as_deref()
            .map(|o| column("operation_outputs", &owner, "output", o))
            .transpose()?;
        Ok(StepView {
            workflow_id: s.workflow_id,
            function_id: s.function_id,
            name: s.name,
            output,
            error: s.error.map(|e| StepFailure {
                message: e.message,
                attempt_errors: e.attempt_errors,
                retries_exhausted: e.retries_exhausted,
            }),
            attempts: s.attempts,
            started_at: s.started_at,
            completed_at: s.completed_at,
            replayed: false,
        })
    }
}

/// Executors as shown, their lease ages as of now.
pub fn executor_views(executors: Vec<ExecutorRecord>) -> Vec<ExecutorView> {
    let now = reprise_store::now_ms();
    executors
        .into_iter()
        .map(|e| ExecutorView {
            expired: e.expired(now),
            lease_age_ms: (now - e.renewed_at).max(0),
            executor_id: e.executor_id,
            started_at: e.started_at,
            lease_ms: e.lease_ms,
            pending: e.pending,
        })
        .collect()
}

/// Converts a listing, failing on the first corrupt row.
pub fn views<R: ToView>(records: impl IntoIterator<Item = R>) -> Result<Vec<R::View>, StoreError> {
    records.into_iter().map(ToView::to_view).collect()
}

impl ToView for MessageRecord {
    type View = MessageView;

    fn to_view(self) -> Result<MessageView, StoreError> {
        let m = self;
        let owner = format!("message {} to {}", m.seq, m.destination_id);
        Ok(MessageView {
            message: column("notifications", &owner, "message", &m.message)?,
            topic: m.topic,
            created_at: m.created_at,
            consumed_at: m.consumed_at,
            consumed_by: m.consumed_by,
        })
    }
}

impl ToView for EventRecord {
    type View = EventView;

    fn to_view(self) -> Result<EventView, StoreError> {
        let e = self;
        let owner = format!("event {:?} of {}", e.key, e.workflow_id);
        Ok(EventView {
            value: Some(column("workflow_events", &owner, "value", &e.value)?),
            updated_at: Some(e.updated_at),
            workflow_id: e.workflow_id,
            key: e.key,
        })
    }
}

/// A stream's summary as shown.
pub(crate) fn stream_info_view(s: StreamInfo) -> StreamInfoView {
    StreamInfoView {
        key: s.key,
        values: s.values,
        closed: s.closed,
    }
}

/// A stream read as the API answers it, `offset` being where it started.
pub(crate) fn stream_chunk(
    workflow_id: &str,
    key: &str,
    offset: u64,
    read: StreamRead,
) -> Result<StreamChunk, StoreError> {
    let owner = format!("stream {key:?} of {workflow_id}");
    let next_offset = read.entries.last().map_or(offset, |e| e.offset + 1);
    let values = read
        .entries
        .into_iter()
        .map(|e| {
            Ok(StreamValue {
                offset: e.offset,
                value: column("streams", &owner, "value", &e.value)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(StreamChunk {
        workflow_id: workflow_id.to_string(),
        key: key.to_string(),
        values,
        next_offset,
        closed: read.closed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use reprise_store::{StepFailureRecord, WorkflowStatus};

    fn record() -> WorkflowRecord {
        WorkflowRecord {
            name: "checkout".into(),
            input: r#""book""#.into(),
            output: Some(r#""receipt-400""#.into()),
            config: r#"{"topic":"alpha"}"#.into(),
            max_recovery_attempts: 100,
            created_at: 1,
            updated_at: 2,
            queue_name: Some("q".into()),
            started_at: Some(1),
            ..WorkflowRecord::example("w", WorkflowStatus::Success)
        }
    }

    #[test]
    fn values_are_json_values_not_json_text() {
        let view = record().to_view().expect("valid record");
        let json = serde_json::to_value(&view).expect("serialize");
        assert_eq!(json["input"], "book");
        assert_eq!(json["output"], "receipt-400");
        assert_eq!(json["config"]["topic"], "alpha");
        assert_eq!(json["status"], "SUCCESS");

        let step = StepRecord {
            workflow_id: "w".into(),
            function_id: 0,
            name: "price_of".into(),
            output: Some("[1,2]".into()),
            error: Some(StepFailureRecord {
                message: "m".into(),
                attempt_errors: vec!["a".into()],
                retries_exhausted: true,
            }),
            attempts: 1,
            started_at: 1,
            completed_at: 2,
            epoch: None,
            committed_epoch: None,
            args: None,
        };
        let json = serde_json::to_value(step.to_view().expect("valid step")).expect("ser");
        assert_eq!(json["output"], serde_json::json!([1, 2]));
        assert_eq!(json["error"]["attempt_errors"][0], "a");
    }

    #[test]
    fn a_corrupt_column_is_an_error_naming_the_workflow_and_column() {
        let corrupt = WorkflowRecord {
            output: Some("{not json".into()),
            ..record()
        };
        let err = corrupt.to_view().expect_err("corrupt");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("workflow w: output"), "{err}");
    }
}
