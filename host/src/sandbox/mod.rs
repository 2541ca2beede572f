//! What one guest instance can touch.
//!
//! Workflow code is replayed, so it reaches nothing real: its clocks and random are virtual
//! ([`clocks`]) and every I/O it tries is refused. Step code reaches what its instance is
//! granted ([`crate::grants`]): HTTP ([`http`]), TCP ([`net`]), directories ([`files`]) and
//! secrets, and only while a step attempt runs.

mod clocks;
pub mod dns;
pub mod files;
pub(crate) mod http;
mod http_client;
mod net;
pub mod poll;
pub mod streams;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::grants::{Grants, IO_OUTSIDE_STEP};

/// Whether an instance is inside a step attempt, shared by its WASI clocks, random and I/O
/// gates and flipped by the step protocol.
#[derive(Debug, Clone, Default)]
pub(crate) struct StepPhase(Arc<AtomicBool>);

impl StepPhase {
    /// A phase that starts inside a step (an isolated step's instance) or outside.
    pub(crate) fn new(in_step: bool) -> Self {
        StepPhase(Arc::new(AtomicBool::new(in_step)))
    }

    /// Marks a step attempt as running (`true`) or workflow code as running (`false`).
    pub(crate) fn set(&self, in_step: bool) {
        self.0.store(in_step, Ordering::Relaxed);
    }

    pub(crate) fn in_step(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// What an instance may reach, and the phase that decides whether it may reach it now.
#[derive(Debug, Clone)]
pub(crate) struct Access {
    pub(crate) grants: Arc<Grants>,
    /// The configured instance, named in refusals.
    pub(crate) instance: String,
    pub(crate) workflow_id: String,
    pub(crate) phase: StepPhase,
    /// The last refusal since it was taken: a refused socket or file reaches the guest as a
    /// bare "permission denied", so the host adds why to the attempt's error.
    refusal: Arc<Mutex<Option<String>>>,
}

impl Access {
    /// Access to `grants` for `workflow_id` on `instance`.
    pub(crate) fn new(
        grants: Arc<Grants>,
        instance: &str,
        workflow_id: &str,
        phase: StepPhase,
    ) -> Self {
        Access {
            grants,
            instance: instance.to_string(),
            workflow_id: workflow_id.to_string(),
            phase,
            refusal: Arc::default(),
        }
    }

    /// Reaches nothing (an instance that only lists definitions).
    pub(crate) fn nothing() -> Self {
        Access::new(Arc::default(), "", "", StepPhase::new(false))
    }

    /// `Err` with [`IO_OUTSIDE_STEP`] when workflow code, not a step, runs now; `what` (what
    /// was tried) is only worded then, off the path of every allowed read and write.
    pub(crate) fn in_step(&self, what: impl FnOnce() -> String) -> Result<(), String> {
        if self.phase.in_step() {
            Ok(())
        } else {
            Err(self.refuse(format!(
                "{IO_OUTSIDE_STEP} (workflow code tried {})",
                what()
            )))
        }
    }

    /// Logs a refusal and keeps it for the attempt's error; returns it.
    pub(crate) fn refuse(&self, message: String) -> String {
        tracing::warn!(workflow_id = %self.workflow_id, "{message}");
        *self.refusal.lock().unwrap_or_else(PoisonError::into_inner) = Some(message.clone());
        message
    }

    /// The refusal since the last call, if any.
    pub(crate) fn take_refusal(&self) -> Option<String> {
        self.refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// An attempt's error with the host's refusal during it, when the guest's error does not
/// already say it: a refused socket or file reaches the guest as a bare "permission denied".
pub(crate) fn with_refusal(message: String, refusal: Option<String>) -> String {
    match refusal {
        Some(refusal) if !message.contains(&refusal) => {
            format!("{message} (the host refused: {refusal})")
        }
        _ => message,
    }
}

/// A granted directory that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open directory {path} granted at {guest_path}: {message}")]
pub(crate) struct SandboxError {
    path: String,
    guest_path: String,
    message: String,
}

/// The WASI context of an instance: virtual clocks and random seeded by `seed` from
/// `epoch_ms` outside steps, and the sockets and directories `access` grants.
pub(crate) fn wasi(seed: &str, epoch_ms: i64, access: &Access) -> Result<WasiCtx, SandboxError> {
    let mut builder = WasiCtxBuilder::new();
    clocks::add_virtual_time(&mut builder, seed, epoch_ms, &access.phase);
    net::add_sockets(&mut builder, access);
    for dir in &access.grants.dirs {
        let perms = if dir.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&dir.host_path, &dir.guest_path, perms)
            .map_err(|e| SandboxError {
                path: dir.host_path.display().to_string(),
                guest_path: dir.guest_path.clone(),
                message: format!("{e:#}"),
            })?;
    }
    Ok(builder.build())
}
