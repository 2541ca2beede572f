//! The step protocol against a fake runtime: what is committed, when, and what the guest is
//! handed, without an engine or a database.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::bindings::reprise::workflow::durable::Host;
use crate::bindings::reprise::workflow::types::RetryPolicy;
use crate::bindings::{
    AttemptInfo, ChildOptions, StepEnd, StepOptions, StepOutcome, StepStart, WorkflowInfo,
};
use crate::grants::{Grants, IO_OUTSIDE_STEP, Secrets};
use crate::limits::InstanceLimits;
use crate::metrics::Metrics;
use crate::runtime::events::EventSink;
use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::history::History;
use crate::runtime::execution::instance::{InstanceState, Role};
use crate::runtime::execution::interrupt::{Interrupt, ProtocolViolation};
use crate::runtime::execution::services::Services;
use crate::runtime::options::StartRequest;
use crate::runtime::step_limits::Taken;
use crate::runtime::waiting::completion::Waited;
use reprise_store::{Change, NewMessage, StepRecord, StoreError};

/// Records what the protocol asks of the runtime; fails checkpoints on request.
#[derive(Default)]
struct FakeServices {
    checkpoints: Mutex<Vec<StepRecord>>,
    children: Mutex<Vec<StartRequest>>,
    fail_checkpoints: bool,
    metrics: Metrics,
    events: EventSink,
}

impl FakeServices {
    fn checkpoints(&self) -> Vec<StepRecord> {
        self.checkpoints
            .lock()
            .map(|c| c.clone())
            .unwrap_or_default()
    }
}

#[async_trait]
impl Services for FakeServices {
    async fn take_step_slot(&self, _step: &str, _epoch: u64) -> Result<Taken, StoreError> {
        Ok(Taken::Unlimited)
    }

    async fn step_slot_rung(&self, _step: &str, _within: Duration) {}

    async fn may_act(&self, _epoch: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn checkpoint(&self, step: &StepRecord) -> Result<(), StoreError> {
        if self.fail_checkpoints {
            return Err(StoreError::WriterGone);
        }
        self.checkpoints.lock().expect("lock").push(step.clone());
        Ok(())
    }

    async fn start_child(
        &self,
        request: StartRequest,
    ) -> Result<Result<String, String>, StoreError> {
        let id = request.id.clone().unwrap_or_default();
        self.children.lock().expect("lock").push(request);
        Ok(Ok(id))
    }

    async fn out_of_reach(&self, _id: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }

    async fn wait_for(&self, _id: &str, _timeout: Duration) -> Result<Waited, StoreError> {
        Ok(Waited::Unknown)
    }

    async fn run_isolated(
        &self,
        _function_id: u32,
        name: &str,
        _input: Vec<u8>,
        _attempt: AttemptInfo,
        _timeout: Option<Duration>,
    ) -> Result<Result<Vec<u8>, String>, ProtocolViolation> {
        Ok(Err(format!("no isolated {name} here")))
    }

    async fn send_message(
        &self,
        _message: &NewMessage,
        _record: &StepRecord,
    ) -> Result<Result<(), String>, StoreError> {
        Err(StoreError::WriterGone)
    }

    async fn receive_message(
        &self,
        _topic: &str,
        _at: &StepRecord,
        _timed_out: bool,
    ) -> Result<Option<String>, StoreError> {
        Err(StoreError::WriterGone)
    }

    async fn get_event(&self, _id: &str, _key: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::WriterGone)
    }

    async fn set_event(&self, _: &str, _: &str, _: &StepRecord) -> Result<(), StoreError> {
        Err(StoreError::WriterGone)
    }

    async fn write_stream(
        &self,
        _key: &str,
        _value: Option<&str>,
        _record: Option<&StepRecord>,
    ) -> Result<(), StoreError> {
        Err(StoreError::WriterGone)
    }

    async fn bytes_held(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    async fn wait_for_change(&self, _change: Change, _timeout: Duration) -> bool {
        false
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn events(&self) -> &EventSink {
        &self.events
    }
}

fn options(max_attempts: u32) -> StepOptions {
    StepOptions {
        retry: RetryPolicy {
            retries_allowed: true,
            max_attempts,
            interval_ms: 0,
            backoff_rate: 2.0,
        },
        isolated: false,
    }
}

fn recorded(function_id: u32, name: &str, output: &str) -> StepRecord {
    StepRecord {
        workflow_id: "wf".into(),
        function_id,
        name: name.into(),
        output: Some(output.into()),
        error: None,
        attempts: 1,
        started_at: 0,
        completed_at: 0,
        epoch: None,
        committed_epoch: None,
        args: None,
    }
}

/// A workflow instance's state on `host`, replaying `steps`.
fn instance(
    host: Arc<FakeServices>,
    steps: Vec<StepRecord>,
    cancel: CancellationToken,
) -> InstanceState {
    let info = WorkflowInfo {
        id: "wf".into(),
        name: "flow".into(),
        recovery_attempt: 0,
        executor_id: "local".into(),
        app_version: "digest".into(),
        instance: "default".into(),
        config: Vec::new(),
    };
    let limits = InstanceLimits {
        max_output_bytes: 8,
        ..InstanceLimits::default()
    };
    let grants = Arc::new(Grants {
        secrets: Secrets::new([("KEY".to_string(), "s3cret".to_string())]),
        ..Grants::default()
    });
    let history = History::new("wf", steps);
    let ctx = WorkflowContext::new(host, info, 0, history, limits, grants.clone(), cancel);
    let role = Role::Workflow(Box::new(ctx));
    InstanceState::new("wf", 0, limits.memory_bytes, role, grants, "default")
        .expect("no dirs to open")
}

#[tokio::test]
async fn a_step_value_is_committed_before_it_is_handed_back() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    let start = state
        .begin_step("a".into(), options(3))
        .await
        .expect("begin");
    assert!(matches!(
        start,
        StepStart::Execute(AttemptInfo {
            attempt: 1,
            max_attempts: 3
        })
    ));
    assert!(host.checkpoints().is_empty());
    let end = state.end_step(Ok(b"42".to_vec())).await.expect("end");
    assert!(matches!(end, StepEnd::Done(StepOutcome::Value(v)) if v == b"42"));
    let committed = host.checkpoints();
    assert_eq!(committed.len(), 1);
    assert_eq!(
        (committed[0].function_id, committed[0].name.as_str()),
        (0, "a")
    );
    assert_eq!(committed[0].output.as_deref(), Some("42"));
}

#[tokio::test]
async fn failed_attempts_retry_uncommitted_then_the_exhausted_failure_is_committed() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    state
        .begin_step("flaky".into(), options(2))
        .await
        .expect("begin");
    let end = state.end_step(Err("first".into())).await.expect("end 1");
    assert!(matches!(
        end,
        StepEnd::Retry(AttemptInfo { attempt: 2, .. })
    ));
    assert!(
        host.checkpoints().is_empty(),
        "a retried attempt is not committed"
    );
    let end = state.end_step(Err("second".into())).await.expect("end 2");
    let StepEnd::Done(StepOutcome::Failed(failure)) = end else {
        panic!("expected a final failure, got {end:?}");
    };
    assert_eq!(failure.attempt_errors, ["first", "second"]);
    assert!(failure.retries_exhausted);
    let committed = host.checkpoints();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].attempts, 2);
    assert_eq!(
        committed[0].error.as_ref().map(|e| e.message.as_str()),
        Some("second")
    );
}

#[tokio::test]
async fn an_output_over_the_cap_is_the_attempts_error() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    state
        .begin_step("big".into(), options(1))
        .await
        .expect("begin");
    let end = state
        .end_step(Ok(b"\"0123456789\"".to_vec()))
        .await
        .expect("end");
    let StepEnd::Done(StepOutcome::Failed(failure)) = end else {
        panic!("expected a failure, got {end:?}");
    };
    assert!(
        failure
            .message
            .contains("output of 12 bytes exceeds the limit of 8 bytes"),
        "{}",
        failure.message
    );
}

#[tokio::test]
async fn a_recorded_step_is_replayed_without_a_commit() {
    let host = Arc::new(FakeServices::default());
    let steps = vec![recorded(0, "a", "7")];
    let mut state = instance(host.clone(), steps, CancellationToken::new());
    let start = state
        .begin_step("a".into(), options(3))
        .await
        .expect("begin");
    assert!(matches!(start, StepStart::Replay(StepOutcome::Value(v)) if v == b"7"));
    let next = state
        .begin_step("b".into(), options(3))
        .await
        .expect("next");
    assert!(matches!(next, StepStart::Execute(_)));
    assert!(host.checkpoints().is_empty());
}

#[tokio::test]
async fn a_failed_commit_stops_the_execution_as_a_host_failure() {
    let host = Arc::new(FakeServices {
        fail_checkpoints: true,
        ..FakeServices::default()
    });
    let mut state = instance(host, vec![], CancellationToken::new());
    state
        .begin_step("a".into(), options(1))
        .await
        .expect("begin");
    let err = state.end_step(Ok(b"1".to_vec())).await.unwrap_err();
    let failure = err.downcast_ref::<Interrupt>().expect("an interrupt");
    assert!(
        matches!(failure, Interrupt::HostFailure(StoreError::WriterGone)),
        "{failure:?}"
    );
}

#[tokio::test]
async fn steps_cannot_nest_and_durable_calls_cannot_run_inside_steps() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host, vec![], CancellationToken::new());
    state
        .begin_step("outer".into(), options(1))
        .await
        .expect("begin");
    let nested = state
        .begin_step("inner".into(), options(1))
        .await
        .unwrap_err();
    assert!(matches!(
        nested.downcast_ref::<Interrupt>(),
        Some(Interrupt::Violation(_))
    ));
    // Inside a step the clock is the real one, not a recorded position.
    let before = reprise_store::now_ms() as u64;
    let now = state.now_ms().await.expect("now");
    assert!(now >= before);
}

#[tokio::test]
async fn a_cancelled_workflow_stops_at_its_next_durable_call() {
    let host = Arc::new(FakeServices::default());
    let cancel = CancellationToken::new();
    let mut state = instance(host.clone(), vec![], cancel.clone());
    cancel.cancel();
    let err = state.begin_step("a".into(), options(1)).await.unwrap_err();
    assert!(matches!(
        err.downcast_ref::<Interrupt>(),
        Some(Interrupt::Cancelled)
    ));
    assert!(host.checkpoints().is_empty());
}

#[tokio::test]
async fn a_child_start_is_recorded_and_replayed_without_starting_it_again() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    let child_options = || ChildOptions {
        queue: None,
        id: None,
        priority: None,
        deduplication_id: None,
    };
    let id = state
        .start_child("sub".into(), b"1".to_vec(), child_options())
        .await
        .expect("start");
    assert_eq!(id, Ok("wf-0".to_string()));
    let committed = host.checkpoints();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].name, "reprise.start-child:sub");

    let mut replay = instance(host.clone(), committed, CancellationToken::new());
    let again = replay
        .start_child("sub".into(), b"1".to_vec(), child_options())
        .await
        .expect("replayed start");
    assert_eq!(again, Ok("wf-0".to_string()));
    assert_eq!(host.children.lock().map(|c| c.len()).unwrap_or(0), 1);
}

#[test]
fn a_huge_log_message_is_cut_on_a_character_boundary_with_a_marker() {
    let short = "hello";
    assert_eq!(super::capped_log_message(short), short);
    let huge = "é".repeat(3 << 20);
    let cut = super::capped_log_message(&huge);
    assert!(
        cut.len() < super::MAX_LOG_BYTES + 64,
        "{} bytes kept",
        cut.len()
    );
    assert!(cut.starts_with("éé"));
    assert!(
        cut.ends_with(&format!(
            "… [log message cut: {} more bytes]",
            huge.len() - super::MAX_LOG_BYTES
        )),
        "{}",
        &cut[cut.len() - 60..]
    );
}

#[tokio::test]
async fn secrets_are_read_only_inside_steps_and_never_committed() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    let outside = state.secret("KEY".into()).await.expect("no trap");
    assert_eq!(
        outside.expect_err("workflow code may not read secrets"),
        format!("{IO_OUTSIDE_STEP} (workflow code tried to read secret \"KEY\")")
    );
    state
        .begin_step("charge".into(), options(1))
        .await
        .expect("begin");
    let inside = state.secret("KEY".into()).await.expect("no trap");
    assert_eq!(inside.as_deref(), Ok("s3cret"));
    let unknown = state.secret("OTHER".into()).await.expect("no trap");
    assert!(
        unknown
            .as_ref()
            .is_err_and(|e| e.contains("secret \"OTHER\" is not granted")),
        "{unknown:?}"
    );
    state.end_step(Ok(b"1".to_vec())).await.expect("end");
    let committed = host.checkpoints();
    assert!(!format!("{committed:?}").contains("s3cret"));
}

#[tokio::test]
async fn a_refusal_during_an_attempt_is_added_to_its_error() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    state
        .begin_step("call".into(), options(1))
        .await
        .expect("begin");
    state.access.refuse("TCP to x:1 is not granted".into());
    state
        .end_step(Err("Permission denied".into()))
        .await
        .expect("end");
    let committed = host.checkpoints();
    assert_eq!(
        committed[0].error.as_ref().map(|e| e.message.as_str()),
        Some("Permission denied (the host refused: TCP to x:1 is not granted)")
    );
}

#[tokio::test]
async fn only_an_isolated_step_may_set_a_timeout() {
    let host = Arc::new(FakeServices::default());
    let mut state = instance(host.clone(), vec![], CancellationToken::new());
    state
        .begin_step("inline".into(), options(1))
        .await
        .expect("begin");
    let err = state.set_step_timeout(100).await.expect_err("inline");
    assert!(err.to_string().contains("is not isolated"), "{err}");

    let mut state = instance(host, vec![], CancellationToken::new());
    let isolated = StepOptions {
        isolated: true,
        ..options(1)
    };
    state
        .begin_step("isolated".into(), isolated)
        .await
        .expect("begin");
    state.set_step_timeout(100).await.expect("isolated");
    let Role::Workflow(ctx) = &state.role else {
        panic!("a workflow instance");
    };
    assert_eq!(
        ctx.pending().and_then(|p| p.timeout),
        Some(Duration::from_millis(100))
    );
}

#[test]
fn a_guest_log_line_cannot_forge_another_or_reach_the_terminal() {
    let forged = "paid\n2026-12-07T00:00:00Z  INFO reprise::serve: refund sent\r\u{1b}[2J\tdone";
    let logged = super::loggable(forged);
    assert!(!logged.contains(['\n', '\r', '\u{1b}']), "{logged}");
    assert_eq!(
        logged,
        "paid\\n2026-12-07T00:00:00Z  INFO reprise::serve: refund sent\\r\\u{1b}[2J\tdone"
    );
    assert!(matches!(
        super::loggable("plain"),
        std::borrow::Cow::Borrowed("plain")
    ));
}
