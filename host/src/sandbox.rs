//! What one guest instance can touch: virtual clocks and random, no files, sockets or
//! environment, a memory limiter, and its role (workflow, isolated step, or inspection).
//!
//! Workflow code must be deterministic for replay to be sound, so WASI's clocks and random
//! sources are functions of the workflow id and the call position, never the real world.
//! Real time and real randomness reach a workflow only through recorded calls (`now-ms`,
//! `random-u64`) or inside steps, whose outcomes are recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};

use crate::limits::MemoryLimiter;
use crate::runtime::durable::Role;

/// The data of one wasmtime store: one instance of a guest.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) role: Role,
    /// The message the guest's panic hook reported, used to classify the following trap.
    pub(crate) panic_message: Option<String>,
}

impl HostState {
    /// A sandbox whose clocks and random are seeded by `seed` (the workflow id) and start at
    /// `epoch_ms` (the workflow's creation time).
    pub fn new(seed: &str, epoch_ms: i64, memory_limit: u64, role: Role) -> Self {
        let digest = Sha256::digest(seed.as_bytes());
        let mut random_bytes = Vec::with_capacity(32 * 64);
        let mut block = digest.to_vec();
        for _ in 0..64 {
            block = Sha256::digest(&block).to_vec();
            random_bytes.extend_from_slice(&block);
        }
        let mut seed128 = [0u8; 16];
        seed128.copy_from_slice(&digest[..16]);
        let wasi = WasiCtxBuilder::new()
            .wall_clock(VirtualWallClock::new(epoch_ms))
            .monotonic_clock(VirtualMonotonicClock::default())
            .insecure_random_seed(u128::from_le_bytes(seed128))
            .insecure_random(wasmtime_wasi::random::Deterministic::new(
                random_bytes.clone(),
            ))
            .secure_random(wasmtime_wasi::random::Deterministic::new(random_bytes))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            role,
            panic_message: None,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Each reading advances by one microsecond from the workflow's creation time, so the n-th
/// reading is the same on every replay.
struct VirtualWallClock {
    epoch: Duration,
    readings: Arc<AtomicU64>,
}

impl VirtualWallClock {
    fn new(epoch_ms: i64) -> Self {
        VirtualWallClock {
            epoch: Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0)),
            readings: Arc::default(),
        }
    }
}

impl HostWallClock for VirtualWallClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        let n = self.readings.fetch_add(1, Ordering::Relaxed);
        self.epoch + Duration::from_micros(n)
    }
}

/// Starts at zero and advances by one microsecond per reading.
#[derive(Default)]
struct VirtualMonotonicClock {
    readings: AtomicU64,
}

impl HostMonotonicClock for VirtualMonotonicClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        self.readings.fetch_add(1, Ordering::Relaxed) * 1_000
    }
}
