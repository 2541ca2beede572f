//! Waiting, from workflow code, on a pollable of something only a step opens (a stream other
//! than stdio, the response of a request) is refused: whether it is ready is I/O too, and a
//! workflow branching on it could not replay. Such pollables are noted as they are subscribed;
//! clocks and stdio stay open to workflow code.

use std::collections::HashSet;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host, HostPollable};
use wasmtime_wasi_io::poll::DynPollable;

use super::Access;

/// `wasi:io/poll` behind the step gate, for the linker.
pub struct GatedPoll;

impl HasData for GatedPoll {
    type Data<'a> = GatedPollView<'a>;
}

/// The instance's resources, its phase, the pollables its steps created, and how a refusal
/// stops the guest (a protocol violation: the workflow fails, rather than trapping again on
/// every recovery).
pub struct GatedPollView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) access: &'a Access,
    pub(crate) step_pollables: &'a mut HashSet<u32>,
    pub(crate) refuse: fn(String) -> wasmtime::Error,
}

impl GatedPollView<'_> {
    fn gate(&self, pollables: &[u32]) -> wasmtime::Result<()> {
        if !pollables.iter().any(|p| self.step_pollables.contains(p)) {
            return Ok(());
        }
        match self
            .access
            .in_step(|| "to wait on a pollable a step created".into())
        {
            Ok(()) => Ok(()),
            Err(refused) => Err((self.refuse)(refused)),
        }
    }
}

impl Host for GatedPollView<'_> {
    async fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        let reps: Vec<u32> = pollables.iter().map(Resource::rep).collect();
        self.gate(&reps)?;
        Host::poll(self.table, pollables).await
    }
}

impl HostPollable for GatedPollView<'_> {
    async fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        self.gate(&[pollable.rep()])?;
        HostPollable::block(self.table, pollable).await
    }

    async fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        self.gate(&[pollable.rep()])?;
        HostPollable::ready(self.table, pollable).await
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        // Its slot may hold workflow code's pollable next.
        self.step_pollables.remove(&pollable.rep());
        HostPollable::drop(self.table, pollable)
    }
}
