//! Waiting for a slot of a limited step (see `runtime::step_limits`) from the workflow's side:
//! a moment in place, then parked like any other wait, holding no instance; the replay that
//! follows the wake-up asks again.

use crate::runtime::execution::context::WorkflowContext;
use crate::runtime::execution::interrupt::{host_failure, parked};
use crate::runtime::step_limits::{SlotGuard, Taken};
use crate::runtime::waiting::park::PARK_AFTER;
use crate::runtime::waiting::wake::Wake;

/// A slot for an execution of step `name` under its instance's limits; none for a step
/// without limits.
pub(crate) async fn step_slot(
    ctx: &WorkflowContext,
    name: &str,
) -> wasmtime::Result<Option<SlotGuard>> {
    let host = ctx.host.clone();
    let began = std::time::Instant::now();
    loop {
        let taken = ctx.unless_cancelled(host.take_step_slot(name, ctx.epoch));
        match taken.await?.map_err(host_failure)? {
            Taken::Unlimited => return Ok(None),
            Taken::Slot(slot) => return Ok(Some(slot)),
            Taken::Busy => {}
        }
        let Some(left) = PARK_AFTER.checked_sub(began.elapsed()) else {
            tracing::debug!(workflow_id = %ctx.info.id, step = name, "no slot free for the step: parking");
            return Err(parked(Wake::StepSlot {
                instance: ctx.info.instance.clone(),
                step: name.to_owned(),
            }));
        };
        ctx.unless_cancelled(host.step_slot_rung(name, left))
            .await?;
    }
}
