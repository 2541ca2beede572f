//! What a write answers: the reply channel of each request and its result, held back while
//! the transaction is open and sent once the commit decided whether it stands.

use tokio::sync::oneshot;

use crate::{Inserted, StoreError, WorkflowRecord};

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A request that has run inside the open transaction; its answer is held back until the
/// commit decides whether it stands.
pub(super) enum Outcome {
    Unit(Reply<()>, Result<(), StoreError>),
    // Boxed: an insert's record is large and rare next to the steps that fill most batches.
    Inserted(Reply<Inserted>, Box<Result<Inserted, StoreError>>),
    Record(
        Reply<WorkflowRecord>,
        Box<Result<WorkflowRecord, StoreError>>,
    ),
    /// Any other answer: the rarer requests' replies, whatever their type.
    Held(Box<dyn Held>),
}

/// An answer held back until the commit, whatever its type.
pub(super) trait Held: Send {
    fn error(&self) -> Option<&StoreError>;
    /// Replaces the answer with `err`.
    fn fail(&mut self, err: StoreError);
    fn send(self: Box<Self>);
}

impl<T: Send + 'static> Held for (Reply<T>, Result<T, StoreError>) {
    fn error(&self) -> Option<&StoreError> {
        self.1.as_ref().err()
    }
    fn fail(&mut self, err: StoreError) {
        self.1 = Err(err);
    }
    fn send(self: Box<Self>) {
        let (reply, result) = *self;
        drop(reply.send(result));
    }
}

impl Outcome {
    /// An answer of any type, held back until the commit.
    pub(super) fn held<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Self {
        Outcome::Held(Box::new((reply, result)))
    }
}

impl Outcome {
    pub(super) fn error(&self) -> Option<&StoreError> {
        match self {
            Outcome::Unit(_, Err(e)) => Some(e),
            Outcome::Inserted(_, result) => result.as_ref().as_ref().err(),
            Outcome::Record(_, result) => result.as_ref().as_ref().err(),
            Outcome::Held(held) => held.error(),
            _ => None,
        }
    }

    /// Replaces a success with `err`: the transaction that held it did not commit. A request
    /// that had already failed keeps its own, more precise error.
    pub(super) fn fail(&mut self, err: impl FnOnce() -> StoreError) {
        match self {
            Outcome::Unit(_, r @ Ok(_)) => *r = Err(err()),
            Outcome::Inserted(_, r) if r.is_ok() => **r = Err(err()),
            Outcome::Record(_, r) if r.is_ok() => **r = Err(err()),
            Outcome::Held(held) if held.error().is_none() => held.fail(err()),
            _ => {}
        }
    }

    /// A caller that stopped waiting does not matter to anyone else, so send errors are ignored.
    pub(super) fn send(self) {
        match self {
            Outcome::Unit(reply, result) => drop(reply.send(result)),
            Outcome::Inserted(reply, result) => drop(reply.send(*result)),
            Outcome::Record(reply, result) => drop(reply.send(*result)),
            Outcome::Held(held) => held.send(),
        }
    }
}
