//! Host bindings generated from `wit/`: the one contract between host and guests.

wasmtime::component::bindgen!({
    world: "guest",
    path: "../wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use self::reprise::workflow::types::{
    ChildFailure, ChildOptions, LogLevel, StepEnd, StepFailure, StepOptions, StepOutcome,
    StepStart, WorkflowInfo,
};
