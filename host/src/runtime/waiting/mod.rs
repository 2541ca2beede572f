//! What a workflow waits on — children, messages, events, streams, sleeps — and how it waits:
//! in place for a moment, then parked with no instance until a signal or its time wakes it.

pub(crate) mod children;
pub(crate) mod completion;
pub(crate) mod park;
pub(crate) mod running;
pub(crate) mod signals;
pub(crate) mod step_slot;
pub(crate) mod waits;
pub(crate) mod wake;
