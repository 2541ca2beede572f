//! What the runtime tells observers (tests, the admin API) as it works. Events
//! are best-effort: with no subscriber they cost one branch.

use crate::limits::TrapClass;
use reprise_store::WorkflowStatus;

/// Something that happened to a workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    /// An execution (first run or recovery) is about to instantiate the guest.
    ExecutionStarted {
        /// The workflow.
        workflow_id: String,
        /// Its execution count (1 for the first run).
        execution: u32,
    },
    /// A parked workflow's wait ended (or it was cancelled): it resumes by replay once it gets
    /// an instance.
    Unparked {
        /// The workflow.
        workflow_id: String,
    },
    /// A step's code is about to run (once per attempt).
    StepExecuting {
        /// The workflow.
        workflow_id: String,
        /// The step's position.
        function_id: u32,
        /// The step's name.
        name: String,
        /// The attempt, from 1.
        attempt: u32,
    },
    /// A step's final outcome was committed.
    StepCompleted {
        /// The workflow.
        workflow_id: String,
        /// The step's position.
        function_id: u32,
        /// The step's name.
        name: String,
        /// Whether it succeeded.
        ok: bool,
    },
    /// A recorded step outcome was handed back without running the code.
    StepReplayed {
        /// The workflow.
        workflow_id: String,
        /// The step's position.
        function_id: u32,
        /// The step's name.
        name: String,
    },
    /// An isolated step's instance trapped; the workflow's instance lives on.
    IsolatedStepTrapped {
        /// The workflow.
        workflow_id: String,
        /// The step's name.
        name: String,
        /// The trap's class.
        class: TrapClass,
    },
    /// A workflow's instance trapped; it stays PENDING and will be recovered.
    ExecutionTrapped {
        /// The workflow.
        workflow_id: String,
        /// Its execution count (1 for the first run).
        execution: u32,
        /// The trap's class.
        class: TrapClass,
    },
    /// A workflow reached a terminal status.
    WorkflowFinished {
        /// The workflow.
        workflow_id: String,
        /// The terminal status.
        status: WorkflowStatus,
    },
}

/// Where events go: subscribers of a broadcast channel. An event is built only when someone
/// listens, so an unobserved runtime pays one branch per event.
pub(crate) struct EventSink {
    sender: tokio::sync::broadcast::Sender<RuntimeEvent>,
}

/// A small sink, for executions nobody observes (dry replays, tests).
impl Default for EventSink {
    fn default() -> Self {
        EventSink::new(16)
    }
}

impl EventSink {
    /// A sink that keeps up to `capacity` events for slow subscribers.
    pub(crate) fn new(capacity: usize) -> Self {
        EventSink {
            sender: tokio::sync::broadcast::channel(capacity).0,
        }
    }

    /// Sends an event if anyone listens; builds it only then.
    pub(crate) fn emit(&self, event: impl FnOnce() -> RuntimeEvent) {
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(event());
        }
    }

    /// Observes what happens from now on.
    pub(crate) fn subscribe(&self) -> tokio::sync::broadcast::Receiver<RuntimeEvent> {
        self.sender.subscribe()
    }
}
