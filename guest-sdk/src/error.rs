//! The errors a workflow sees: why a step or a child workflow produced no value, and a
//! catch-all workflow error.

use std::fmt;

/// Why a call to a [`#[step]`](macro@crate::step) function returned no value.
///
/// The same error comes back on a replay as on the first run: it is rebuilt from the step's
/// recorded failure. It implements `std::error::Error`, and both `String` and
/// [`Error`] convert from it, so `?` works in a workflow returning either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The step failed for good without using up its attempts: its options do not allow
    /// retries (`retries = false`). `message` is the failed attempt's error.
    Failed {
        /// The step's registered name.
        step: String,
        /// The failed attempt's error message (`E::to_string()`).
        message: String,
    },
    /// Every attempt the step's retry policy allows failed (DBOS's `MaxStepRetriesExceeded`).
    MaxRetriesExceeded(MaxStepRetriesExceeded),
    /// The recorded output did not deserialize into the step's output type: the step's output
    /// type changed since the outcome was recorded, or the output does not survive a JSON round
    /// trip (e.g. a NaN float).
    Decode {
        /// The step's registered name.
        step: String,
        /// The deserializer's message.
        message: String,
    },
}

impl StepError {
    /// The registered name of the step that failed, whatever the kind of failure.
    pub fn step(&self) -> &str {
        match self {
            StepError::Failed { step, .. } | StepError::Decode { step, .. } => step,
            StepError::MaxRetriesExceeded(e) => &e.step,
        }
    }

    /// The last error message: the failed attempt's error, or the decode error.
    pub fn message(&self) -> &str {
        match self {
            StepError::Failed { message, .. } | StepError::Decode { message, .. } => message,
            StepError::MaxRetriesExceeded(e) => e.last_error(),
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Failed { step, message } => write!(f, "step '{step}' failed: {message}"),
            StepError::MaxRetriesExceeded(e) => e.fmt(f),
            StepError::Decode { step, message } => {
                write!(
                    f,
                    "step '{step}': its recorded output does not decode: {message}"
                )
            }
        }
    }
}

impl std::error::Error for StepError {}

/// Lets `?` turn a step error into a workflow's `String` error: the error's `Display` text.
impl From<StepError> for String {
    fn from(e: StepError) -> String {
        e.to_string()
    }
}

/// Why a child workflow (see [`Child`](crate::Child)) produced no value for its parent.
///
/// Like a step's outcome, starting and awaiting a child are recorded: a replay returns the
/// same error as the first run. It implements `std::error::Error`, and both `String` and
/// [`Error`] convert from it, so `?` works in a workflow returning either.
///
/// ```ignore
/// match handle.result() {
///     Ok(receipt) => info!("published {receipt}"),
///     Err(ChildError::Failed { id, status, .. }) => info!("child {id} ended {status}"),
///     Err(other) => return Err(other.into()),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildError {
    /// The child ran and ended without an output.
    Failed {
        /// The child's workflow id.
        id: String,
        /// How it ended: `ERROR`, `CANCELLED` or `MAX_RECOVERY_ATTEMPTS_EXCEEDED`.
        status: String,
        /// Its error, as the host recorded it.
        message: String,
    },
    /// The child was not started: the host refused it (an unknown workflow or queue, a
    /// duplicate deduplication id, an id that breaks the id rule), its input did not
    /// serialize, or the call was made inside a step.
    NotStarted {
        /// The workflow name the parent asked for.
        workflow: String,
        /// Why it was not started.
        message: String,
    },
    /// The child succeeded, but its output did not deserialize into the type the parent
    /// expects from it.
    Decode {
        /// The child's workflow id.
        id: String,
        /// The deserializer's message.
        message: String,
    },
    /// The child was not awaited: [`ChildHandle::result`](crate::ChildHandle::result) was
    /// called inside a step. Says nothing of the child itself.
    NotAwaited {
        /// The child's workflow id.
        id: String,
        /// Why it was not awaited.
        message: String,
    },
}

impl ChildError {
    /// The child's workflow id; `None` when it was not started (there is none).
    pub fn id(&self) -> Option<&str> {
        match self {
            ChildError::Failed { id, .. }
            | ChildError::Decode { id, .. }
            | ChildError::NotAwaited { id, .. } => Some(id),
            ChildError::NotStarted { .. } => None,
        }
    }

    /// The error message, without the child's id or status.
    pub fn message(&self) -> &str {
        match self {
            ChildError::Failed { message, .. }
            | ChildError::NotStarted { message, .. }
            | ChildError::Decode { message, .. }
            | ChildError::NotAwaited { message, .. } => message,
        }
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Failed {
                id,
                status,
                message,
            } => write!(f, "child workflow '{id}' ended {status}: {message}"),
            ChildError::NotStarted { workflow, message } => {
                write!(f, "child workflow '{workflow}' was not started: {message}")
            }
            ChildError::Decode { id, message } => {
                write!(
                    f,
                    "child workflow '{id}': its output does not decode: {message}"
                )
            }
            ChildError::NotAwaited { id, message } => {
                write!(f, "child workflow '{id}' was not awaited: {message}")
            }
        }
    }
}

impl std::error::Error for ChildError {}

/// Lets `?` turn a child's error into a workflow's `String` error: the error's `Display` text.
impl From<ChildError> for String {
    fn from(e: ChildError) -> String {
        e.to_string()
    }
}

/// A step used up every attempt its retry policy allows (DBOS's `MaxStepRetriesExceeded`).
///
/// Match on it to handle exhaustion differently from other failures:
///
/// ```ignore
/// match provision_vm(region) {
///     Err(StepError::MaxRetriesExceeded(e)) => info!("gave up after {} attempts: {:?}", e.attempts, e.errors),
///     other => { other?; }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxStepRetriesExceeded {
    /// The step's registered name.
    pub step: String,
    /// How many attempts ran (the number of recorded attempt errors).
    pub attempts: u32,
    /// Every attempt's error message, oldest first.
    pub errors: Vec<String>,
}

impl MaxStepRetriesExceeded {
    /// The last attempt's error message (empty if none was recorded).
    pub fn last_error(&self) -> &str {
        self.errors.last().map_or("", String::as_str)
    }
}

impl fmt::Display for MaxStepRetriesExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step '{}' failed after {} attempt{}: {}",
            self.step,
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.last_error()
        )
    }
}

impl std::error::Error for MaxStepRetriesExceeded {}

/// A catch-all error for workflows (and steps) that meet several error types, in the manner of
/// `anyhow::Error`: `?` converts any `std::error::Error + Send + Sync + 'static` into it,
/// [`Error::msg`] and [`bail!`](crate::bail) make one from a message.
///
/// ```ignore
/// #[workflow]
/// fn import(url: String) -> reprise_guest::Result<usize> {
///     let body = fetch(url)?;                     // StepError -> Error
///     let rows: Vec<Row> = serde_json::from_str(&body)?; // serde_json::Error -> Error
///     if rows.is_empty() { bail!("nothing to import"); }
///     Ok(rows.len())
/// }
/// ```
///
/// Its `Display` text, which becomes the workflow's recorded error, is the error followed by
/// its chain of sources, separated by `": "`. Like `anyhow::Error` it does not implement
/// `std::error::Error` itself (that would conflict with the blanket `From`).
pub struct Error {
    inner: Box<dyn std::error::Error + Send + Sync + 'static>,
}

/// The error [`Error::msg`] wraps: just a message.
struct Message(String);

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

impl Error {
    /// An error that is just a message (`String`, `&str`, or anything `Display`).
    pub fn msg(message: impl fmt::Display) -> Self {
        Error {
            inner: Box::new(Message(message.to_string())),
        }
    }

    /// The wrapped error, e.g. to inspect it with `downcast_ref`.
    pub fn as_inner(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.inner
    }

    /// The wrapped error if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.inner.downcast_ref::<E>()
    }

    /// Unwraps the boxed error.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.inner
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for Error {
    fn from(e: E) -> Self {
        Error { inner: Box::new(e) }
    }
}

/// Lets [`bail!`](crate::bail) and `?` work in functions returning `Result<_, String>`.
impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.inner)?;
        let mut source = self.inner.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
