//! What the runtime tells observers (tests, metrics, a future admin API) as it works. Events
//! are best-effort: with no subscriber they cost one branch.

use crate::limits::TrapClass;
use crate::store::WorkflowStatus;

/// Something that happened to a workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeEvent {
    /// An execution (first run or recovery) is about to instantiate the guest.
    ExecutionStarted { workflow_id: String, execution: u32 },
    /// A step's code is about to run (once per attempt).
    StepExecuting {
        workflow_id: String,
        function_id: u32,
        name: String,
        attempt: u32,
    },
    /// A step's final outcome was committed.
    StepCompleted {
        workflow_id: String,
        function_id: u32,
        name: String,
        ok: bool,
    },
    /// A recorded step outcome was handed back without running the code.
    StepReplayed {
        workflow_id: String,
        function_id: u32,
        name: String,
    },
    /// An isolated step's instance trapped; the workflow's instance lives on.
    IsolatedStepTrapped {
        workflow_id: String,
        name: String,
        class: TrapClass,
    },
    /// A workflow's instance trapped; it stays PENDING and will be recovered.
    ExecutionTrapped {
        workflow_id: String,
        execution: u32,
        class: TrapClass,
    },
    /// A workflow reached a terminal status.
    WorkflowFinished {
        workflow_id: String,
        status: WorkflowStatus,
    },
}
