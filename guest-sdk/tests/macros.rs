//! Native checks of what the macros generate: every supported signature compiles, the
//! registration records carry the declared names and options, and the entry points decode
//! inputs and encode outputs as the host contract says. (Calls that need the host's durable
//! imports only work inside a component; the guests in `guests/` cover those.)

use reprise_guest::__bindings::AttemptInfo;
use reprise_guest::__bindings::{StepError as ExportStepError, WorkflowError};
use reprise_guest::__private::{StepDef, WorkflowDef, definitions, run_step, run_workflow};
use reprise_guest::prelude::*;
use serde::{Deserialize, Serialize};

#[step]
fn add(a: u64, b: u64) -> Result<u64, String> {
    Ok(a + b)
}

#[step(
    max_attempts = 5,
    interval_ms = 100,
    backoff_rate = 1.5,
    name = "flaky-one"
)]
fn flaky(mut n: u32) -> Result<u32, String> {
    n += 1;
    if n > 10 {
        Err(format!("too big: {n}"))
    } else {
        Ok(n)
    }
}

#[step(retries = false)]
fn nothing() -> Result<(), std::io::Error> {
    Ok(())
}

#[step(isolated, max_attempts = 2)]
fn isolated_pair((a, b): (u32, u32), r#type: String) -> Result<String, String> {
    Ok(format!("{type}:{}", a + b))
}

#[step(isolated = false, backoff_rate = 3)]
fn infallible(x: i64) -> i64 {
    -x
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    items: Vec<String>,
}

#[step]
fn checked(order: Order) -> reprise_guest::Result<usize> {
    if order.items.is_empty() {
        bail!("order {} is empty", order.id);
    }
    Ok(order.items.len())
}

#[workflow]
fn one(order: Order) -> Result<Order, String> {
    Ok(order)
}

#[workflow(name = "two-args")]
fn two(a: u32, b: String) -> String {
    format!("{b}{a}")
}

#[workflow]
fn none() {}

#[workflow]
fn failing(reason: String) -> reprise_guest::Result<u32> {
    Err(Error::msg(reason))
}

#[workflow]
fn same(same: u32) -> u32 {
    same
}

/// Unused by the tests: checks that `?` converts a step error into each supported error type.
#[workflow]
fn conversions() -> Result<u32, String> {
    fn into_error() -> reprise_guest::Result<u64> {
        Ok(add(1, 2)?)
    }
    fn into_boxed() -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        Ok(add(1, 2)?)
    }
    into_error().map_err(|e| e.to_string())?;
    into_boxed().map_err(|e| e.to_string())?;
    Ok(flaky(1)?)
}

/// Unused by the tests: checks that the child API's types line up in a workflow and that `?`
/// converts a child error into each supported error type.
#[workflow]
fn children(n: u32) -> Result<Vec<u64>, String> {
    let handles = (1..=n)
        .map(|i| start_child::<u64, _>("same", &i))
        .collect::<Result<Vec<_>, _>>()?;
    let queued: ChildHandle<String> = Child::new("two-args")
        .queue("q")
        .priority(1)
        .deduplication_id("d")
        .id("i")
        .start(&(7, "x"))?;
    fn into_error(h: &ChildHandle<String>) -> reprise_guest::Result<String> {
        Ok(h.result()?)
    }
    into_error(&queued).map_err(String::from)?;
    match ChildHandle::<()>::from_id(queued.id()).result() {
        Err(ChildError::Failed { status, .. }) => info!("ended {status}"),
        other => other?,
    }
    Ok(handles
        .iter()
        .map(ChildHandle::result)
        .collect::<Result<_, _>>()?)
}

mod nested {
    use reprise_guest::prelude::*;

    #[step]
    pub(crate) fn inner(s: String) -> Result<String, String> {
        Ok(s.to_uppercase())
    }

    #[workflow]
    pub(crate) fn nested_flow() -> Result<String, String> {
        Ok(inner("x".into())?)
    }
}

reprise_guest::export!(
    workflows = [
        one,
        two,
        none,
        failing,
        same,
        conversions,
        children,
        nested::nested_flow
    ],
    steps = [
        add,
        flaky,
        nothing,
        isolated_pair,
        infallible,
        checked,
        nested::inner
    ],
);

const WORKFLOWS: &[WorkflowDef] = &[
    __reprise_workflow_one,
    __reprise_workflow_two,
    __reprise_workflow_none,
    __reprise_workflow_failing,
    __reprise_workflow_same,
];
const STEPS: &[StepDef] = &[
    __reprise_step_add,
    __reprise_step_flaky,
    __reprise_step_nothing,
    __reprise_step_isolated_pair,
    __reprise_step_infallible,
    __reprise_step_checked,
    nested::__reprise_step_inner,
];

fn attempt(attempt: u32) -> AttemptInfo {
    AttemptInfo {
        attempt,
        max_attempts: 3,
    }
}

fn step(name: &str, input: &str) -> Result<String, ExportStepError> {
    run_step(STEPS, name.into(), input.as_bytes().to_vec(), attempt(1))
        .map(|out| String::from_utf8(out).expect("JSON is UTF-8"))
}

fn workflow(name: &str, input: &str) -> Result<String, WorkflowError> {
    run_workflow(WORKFLOWS, name.into(), input.as_bytes().to_vec())
        .map(|out| String::from_utf8(out).expect("JSON is UTF-8"))
}

#[test]
fn definitions_carry_names_and_options() {
    let defs = definitions(WORKFLOWS, STEPS);
    assert_eq!(
        defs.workflows,
        ["one", "two-args", "none", "failing", "same"]
    );
    let names: Vec<_> = defs.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "add",
            "flaky-one",
            "nothing",
            "isolated_pair",
            "infallible",
            "checked",
            "inner"
        ]
    );
    let add = &defs.steps[0].options;
    assert!(add.retry.retries_allowed && !add.isolated);
    assert_eq!((add.retry.max_attempts, add.retry.interval_ms), (3, 1000));
    assert_eq!(add.retry.backoff_rate, 2.0);
    let flaky = &defs.steps[1].options;
    assert_eq!(
        (flaky.retry.max_attempts, flaky.retry.interval_ms),
        (5, 100)
    );
    assert_eq!(flaky.retry.backoff_rate, 1.5);
    assert!(!defs.steps[2].options.retry.retries_allowed);
    assert!(defs.steps[3].options.isolated);
    assert_eq!(defs.steps[3].options.retry.max_attempts, 2);
    assert!(!defs.steps[4].options.isolated);
    assert_eq!(defs.steps[4].options.retry.backoff_rate, 3.0);
}

#[test]
fn steps_take_a_json_array_of_their_arguments() {
    assert_eq!(step("add", "[2, 3]").unwrap(), "5");
    assert_eq!(step("flaky-one", "[4]").unwrap(), "5");
    assert_eq!(step("nothing", "[]").unwrap(), "null");
    assert_eq!(
        step("isolated_pair", r#"[[1, 2], "t"]"#).unwrap(),
        r#""t:3""#
    );
    assert_eq!(step("infallible", "[7]").unwrap(), "-7");
    assert_eq!(step("inner", r#"["abc"]"#).unwrap(), r#""ABC""#);
    assert_eq!(
        step("checked", r#"[{"id": 1, "items": ["a", "b"]}]"#).unwrap(),
        "2"
    );
}

#[test]
fn step_errors_map_to_the_export_variants() {
    assert!(
        matches!(step("flaky-one", "[10]"), Err(ExportStepError::Failed(m)) if m == "too big: 11")
    );
    assert!(matches!(step("checked", r#"[{"id": 9, "items": []}]"#),
        Err(ExportStepError::Failed(m)) if m == "order 9 is empty"));
    assert!(
        matches!(step("add", "[1]"), Err(ExportStepError::InvalidInput(m)) if m.contains("(u64, u64)"))
    );
    assert!(matches!(
        step("add", "7"),
        Err(ExportStepError::InvalidInput(_))
    ));
    assert!(matches!(step("flaky", "[1]"), Err(ExportStepError::UnknownStep(n)) if n == "flaky"));
}

#[test]
fn step_status_is_set_while_a_step_runs_from_the_export() {
    #[step]
    fn status() -> Result<String, String> {
        let s = step_status().ok_or("no status")?;
        Ok(format!("{} {}/{}", s.step_name, s.attempt, s.max_attempts))
    }
    let out = run_step(
        &[__reprise_step_status],
        "status".into(),
        b"[]".to_vec(),
        attempt(2),
    );
    assert_eq!(out.unwrap(), br#""status 2/3""#);
    assert_eq!(step_status(), None);
}

#[test]
fn workflow_inputs_follow_the_arity_convention() {
    assert_eq!(
        workflow("one", r#"{"id": 1, "items": []}"#).unwrap(),
        r#"{"id":1,"items":[]}"#
    );
    assert_eq!(workflow("two-args", r#"[7, "x"]"#).unwrap(), r#""x7""#);
    assert_eq!(workflow("none", "null").unwrap(), "null");
    assert_eq!(workflow("none", "").unwrap(), "null");
    assert_eq!(workflow("same", "4").unwrap(), "4");
}

#[test]
fn workflow_errors_map_to_the_export_variants() {
    assert!(
        matches!(workflow("failing", r#""boom""#), Err(WorkflowError::Failed(m)) if m == "boom")
    );
    assert!(
        matches!(workflow("one", "[]"), Err(WorkflowError::InvalidInput(m))
        if m.contains("workflow 'one' expects") && m.contains("Order"))
    );
    assert!(matches!(
        workflow("two-args", "7"),
        Err(WorkflowError::InvalidInput(_))
    ));
    assert!(
        matches!(workflow("nope", "null"), Err(WorkflowError::UnknownWorkflow(n)) if n == "nope")
    );
}

#[test]
fn step_errors_display_and_convert() {
    let exhausted = StepError::MaxRetriesExceeded(MaxStepRetriesExceeded {
        step: "s".into(),
        attempts: 2,
        errors: vec!["a".into(), "b".into()],
    });
    assert_eq!(exhausted.to_string(), "step 's' failed after 2 attempts: b");
    assert_eq!(exhausted.message(), "b");
    let failed = StepError::Failed {
        step: "s".into(),
        message: "m".into(),
    };
    assert_eq!(String::from(failed.clone()), "step 's' failed: m");
    assert_eq!(Error::from(failed).to_string(), "step 's' failed: m");
    #[derive(Debug)]
    struct Outer(std::io::Error);
    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("outer")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    let chained = Error::from(Outer(std::io::Error::other("inner")));
    assert_eq!(chained.to_string(), "outer: inner");
    assert!(chained.downcast_ref::<Outer>().is_some());
    assert_eq!(String::from(Error::msg("plain")), "plain");
}

#[test]
fn child_calls_inside_a_step_are_refused() {
    #[step]
    fn starts_child() -> Result<String, String> {
        match start_child::<u64, _>("fib", &3) {
            Err(e @ ChildError::NotStarted { .. }) => Err(e.to_string()),
            other => Ok(format!("{other:?}")),
        }
    }
    #[step]
    fn awaits_child() -> Result<String, String> {
        match ChildHandle::<u64>::from_id("c-1").result() {
            Err(e @ ChildError::NotAwaited { .. }) => Err(e.to_string()),
            other => Ok(format!("{other:?}")),
        }
    }
    let steps = [__reprise_step_starts_child, __reprise_step_awaits_child];
    let run = |name: &str| run_step(&steps, name.into(), b"[]".to_vec(), attempt(1));
    assert!(
        matches!(run("starts_child"), Err(ExportStepError::Failed(m))
        if m == "child workflow 'fib' was not started: called inside step 'starts_child': \
                 start child workflows from the workflow's body, not from a step")
    );
    assert!(
        matches!(run("awaits_child"), Err(ExportStepError::Failed(m))
        if m.starts_with("child workflow 'c-1' was not awaited: called inside step 'awaits_child'"))
    );
}

#[test]
fn child_errors_display_and_convert() {
    let failed = ChildError::Failed {
        id: "c-1".into(),
        status: "ERROR".into(),
        message: "boom".into(),
    };
    assert_eq!(failed.to_string(), "child workflow 'c-1' ended ERROR: boom");
    assert_eq!((failed.id(), failed.message()), (Some("c-1"), "boom"));
    assert_eq!(
        String::from(failed.clone()),
        "child workflow 'c-1' ended ERROR: boom"
    );
    assert!(Error::from(failed).downcast_ref::<ChildError>().is_some());
    let not_started = ChildError::NotStarted {
        workflow: "fib".into(),
        message: "unknown queue 'q'".into(),
    };
    assert_eq!(
        not_started.to_string(),
        "child workflow 'fib' was not started: unknown queue 'q'"
    );
    assert_eq!(not_started.id(), None);
    let decode = ChildError::Decode {
        id: "c-2".into(),
        message: "expected u64".into(),
    };
    assert_eq!(
        decode.to_string(),
        "child workflow 'c-2': its output does not decode: expected u64"
    );
}
