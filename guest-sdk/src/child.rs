//! Child workflows (DBOS's `start_workflow`, `enqueue` and `handle.get_result()`): a workflow
//! starts another workflow of its component, at once or on a queue, and later awaits its
//! output, through the host's `start-child` and `await-child`.

use std::any::type_name;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::__bindings::reprise::workflow::types::{ChildFailure, ChildOptions};
use crate::backend as durable;
use crate::error::ChildError;
use crate::runtime::step_status;

/// How to start a child workflow: the builder form of [`start_child`].
///
/// ```ignore
/// let handle: ChildHandle<String> = Child::new("publish")
///     .queue("publishers")        // enqueue: the queue's concurrency and rate limits apply
///     .priority(1)                // lower runs sooner within the queue
///     .deduplication_id("x")      // refused while another "x" is enqueued or running there
///     .id("my-id")                // its workflow id (default: derived from the parent's)
///     .start(&("alpha", 3))?;     // the input, as `run-workflow` takes it
/// let receipt = handle.result()?;
/// ```
///
/// [`start`](Child::start) borrows the builder, so one `Child` can start several workflows
/// with the same options (leave `id` and `deduplication_id` unset for that).
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "a Child does nothing until `.start(input)`"]
pub struct Child {
    workflow: String,
    queue: Option<String>,
    id: Option<String>,
    priority: Option<i32>,
    deduplication_id: Option<String>,
}

impl Child {
    /// A child running the workflow registered under `workflow` in this component, started at
    /// once unless [`queue`](Child::queue) is set.
    pub fn new(workflow: impl Into<String>) -> Self {
        Child {
            workflow: workflow.into(),
            queue: None,
            id: None,
            priority: None,
            deduplication_id: None,
        }
    }

    /// Enqueues the child on this queue instead of starting it at once: it starts when the
    /// queue's concurrency and rate limits allow. An unknown queue is a
    /// [`ChildError::NotStarted`].
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = Some(queue.into());
        self
    }

    /// The child's workflow id. Without one the host derives it from the parent's id and the
    /// call's position, so a replay finds the same child instead of starting another. An id
    /// must follow the host's rule (1 to 200 ASCII letters, digits and `-_.:@`, not `.` or
    /// `..`): the host refuses any other, and the start fails with [`ChildError::NotStarted`].
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Its priority within the queue: lower runs sooner (default 0).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// While a workflow with this deduplication id is enqueued or running on the queue,
    /// another enqueue with the same id is refused (a [`ChildError::NotStarted`]).
    pub fn deduplication_id(mut self, deduplication_id: impl Into<String>) -> Self {
        self.deduplication_id = Some(deduplication_id.into());
        self
    }

    /// Starts (or enqueues) the child with `input` and returns a handle to await its output,
    /// decoded as `T`. The child runs concurrently with the parent.
    ///
    /// The input follows the workflow input convention: a workflow of one argument takes
    /// `input` as it is, one of several arguments takes a tuple of them (a JSON array), one of
    /// none ignores it (pass `&()`). A one-element tuple `(x,)` is an array `[x]`, which a
    /// workflow of one argument does not accept: pass `&x`.
    ///
    /// The start is recorded: a replay returns the recorded id (or error) and never starts the
    /// child twice. Fails with [`ChildError::NotStarted`] if the host refuses it (unknown
    /// workflow or queue, duplicate deduplication id, an id that breaks the id rule), if
    /// `input` does not serialize, or if
    /// called inside a step.
    pub fn start<T, I: Serialize + ?Sized>(&self, input: &I) -> Result<ChildHandle<T>, ChildError> {
        let input = self.prepare(input)?;
        let id = durable::start_child(&self.workflow, &input, &self.options())
            .map_err(|message| self.not_started(message))?;
        Ok(ChildHandle::from_id(id))
    }

    /// Checks that a child may be started here and encodes its input: everything `start`
    /// decides before it asks the host.
    fn prepare<I: Serialize + ?Sized>(&self, input: &I) -> Result<Vec<u8>, ChildError> {
        if let Some(step) = step_status() {
            return Err(self.not_started(format!(
                "called inside step '{}': start child workflows from the workflow's body, \
                 not from a step",
                step.step_name
            )));
        }
        serde_json::to_vec(input)
            .map_err(|e| self.not_started(format!("its input did not serialize: {e}")))
    }

    /// The options in the WIT's shape, as `start-child` takes them.
    fn options(&self) -> ChildOptions {
        ChildOptions {
            queue: self.queue.clone(),
            id: self.id.clone(),
            priority: self.priority,
            deduplication_id: self.deduplication_id.clone(),
        }
    }

    fn not_started(&self, message: String) -> ChildError {
        ChildError::NotStarted {
            workflow: self.workflow.clone(),
            message,
        }
    }
}

/// Starts the workflow registered under `workflow` at once, as a child running concurrently
/// with this workflow, and returns a handle to await its output as `T`.
///
/// ```ignore
/// let handle: ChildHandle<u64> = start_child("fib", &20u32)?;
/// let fib20 = handle.result()?;
/// ```
///
/// The same as `Child::new(workflow).start(input)`; see [`Child::start`] for the input's
/// encoding and the errors, and [`Child`] for queues, ids and priorities.
pub fn start_child<T, I: Serialize + ?Sized>(
    workflow: &str,
    input: &I,
) -> Result<ChildHandle<T>, ChildError> {
    Child::new(workflow).start(input)
}

/// A started (or enqueued) workflow whose output the parent can await as a `T`.
///
/// Returned by [`start_child`] and [`Child::start`]; [`ChildHandle::from_id`] makes one for a
/// workflow started elsewhere.
pub struct ChildHandle<T> {
    id: String,
    output: PhantomData<fn() -> T>,
}

impl<T> ChildHandle<T> {
    /// A handle on the workflow with this id, wherever it was started: one of this
    /// workflow's instance, its own child, or one of an instance its instance may `reach`.
    /// Any other id is awaited as one that does not exist.
    pub fn from_id(id: impl Into<String>) -> Self {
        ChildHandle {
            id: id.into(),
            output: PhantomData,
        }
    }

    /// The workflow's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The workflow's id, consuming the handle.
    pub fn into_id(self) -> String {
        self.id
    }
}

impl<T: DeserializeOwned> ChildHandle<T> {
    /// Waits for the workflow to end and returns its output decoded as `T`
    /// (DBOS's `handle.get_result()`).
    ///
    /// The result is recorded: a replay returns it without waiting. Fails with
    /// [`ChildError::Failed`] if the workflow ended `ERROR`, `CANCELLED` or
    /// `MAX_RECOVERY_ATTEMPTS_EXCEEDED`, with [`ChildError::Decode`] if its output is not a
    /// `T`, and with [`ChildError::NotAwaited`] if called inside a step. Each call is a
    /// recorded wait of its own, so like every durable call it must happen in the same order
    /// on a replay.
    pub fn result(&self) -> Result<T, ChildError> {
        if let Some(step) = step_status() {
            return Err(ChildError::NotAwaited {
                id: self.id.clone(),
                message: format!(
                    "called inside step '{}': await child workflows from the workflow's body, \
                     not from a step",
                    step.step_name
                ),
            });
        }
        child_output(&self.id, durable::await_child(&self.id))
    }
}

/// Turns `await-child`'s answer into what [`ChildHandle::result`] returns: the output decoded
/// into `T`, or the failure as a [`ChildError`].
fn child_output<T: DeserializeOwned>(
    id: &str,
    answer: Result<Vec<u8>, ChildFailure>,
) -> Result<T, ChildError> {
    match answer {
        Ok(json) => serde_json::from_slice(&json).map_err(|e| ChildError::Decode {
            id: id.to_owned(),
            message: format!("expected {}: {e}", type_name::<T>()),
        }),
        Err(failure) => Err(ChildError::Failed {
            id: failure.id,
            status: failure.status,
            message: failure.message,
        }),
    }
}

// Manual impls: the derives would require `T` to implement each trait, and `T` is only the
// type the output decodes into.

impl<T> Clone for ChildHandle<T> {
    fn clone(&self) -> Self {
        ChildHandle::from_id(self.id.clone())
    }
}

impl<T> fmt::Debug for ChildHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildHandle")
            .field("id", &self.id)
            .field("output", &type_name::<T>())
            .finish()
    }
}

impl<T> PartialEq for ChildHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for ChildHandle<T> {}

impl<T> Hash for ChildHandle<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builder_fills_the_wit_options() {
        let plain = Child::new("fib").options();
        assert_eq!(
            (
                plain.queue,
                plain.id,
                plain.priority,
                plain.deduplication_id
            ),
            (None, None, None, None)
        );
        let full = Child::new("publish")
            .queue("publishers")
            .priority(-1)
            .deduplication_id("x")
            .id("my-id")
            .options();
        assert_eq!(full.queue.as_deref(), Some("publishers"));
        assert_eq!(full.id.as_deref(), Some("my-id"));
        assert_eq!(full.priority, Some(-1));
        assert_eq!(full.deduplication_id.as_deref(), Some("x"));
    }

    /// The JSON `start` would send for `input`.
    fn encode<I: Serialize + ?Sized>(input: &I) -> String {
        String::from_utf8(Child::new("w").prepare(input).unwrap()).unwrap()
    }

    #[test]
    fn inputs_follow_the_workflow_input_convention() {
        // One argument: the value as it is.
        assert_eq!(encode(&20u32), "20");
        assert_eq!(encode("alice"), r#""alice""#);
        assert_eq!(encode(&vec![1, 2]), "[1,2]");
        // Several: a JSON array of them. None: anything, e.g. null.
        assert_eq!(encode(&("alpha", 3u32)), r#"["alpha",3]"#);
        assert_eq!(encode(&()), "null");
    }

    #[test]
    fn an_input_that_does_not_serialize_is_not_started() {
        let mut map = std::collections::HashMap::new();
        map.insert((1, 2), 3); // JSON object keys must be strings
        let err = Child::new("w").prepare(&map).unwrap_err();
        assert!(
            matches!(&err, ChildError::NotStarted { workflow, message }
                if workflow == "w" && message.starts_with("its input did not serialize")),
            "{err:?}"
        );
    }

    #[test]
    fn await_answers_become_values_or_child_errors() {
        assert_eq!(child_output::<u64>("c", Ok(b"6765".to_vec())), Ok(6765));
        assert_eq!(child_output::<()>("c", Ok(b"null".to_vec())), Ok(()));
        let decode = child_output::<u64>("c", Ok(br#""text""#.to_vec())).unwrap_err();
        assert!(
            matches!(&decode, ChildError::Decode { id, message }
                if id == "c" && message.starts_with("expected u64")),
            "{decode:?}"
        );
        let failed = child_output::<u64>(
            "c",
            Err(ChildFailure {
                id: "c".into(),
                status: "CANCELLED".into(),
                message: "cancelled by the operator".into(),
            }),
        );
        assert_eq!(
            failed,
            Err(ChildError::Failed {
                id: "c".into(),
                status: "CANCELLED".into(),
                message: "cancelled by the operator".into(),
            })
        );
    }

    #[test]
    fn handles_compare_by_id_whatever_the_output_type() {
        #[derive(Debug)]
        struct NotClone;
        let handle = ChildHandle::<NotClone>::from_id("abc");
        assert_eq!(handle.clone(), handle);
        assert_eq!(handle.id(), "abc");
        assert!(format!("{handle:?}").contains("NotClone"));
        assert_eq!(handle.into_id(), "abc");
    }
}
