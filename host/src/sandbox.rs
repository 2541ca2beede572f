//! What one guest instance can touch: virtual clocks and random, no files, sockets or
//! environment.
//!
//! Workflow code must be deterministic for replay to be sound, so WASI's clocks and random
//! sources are functions of the workflow id and the call position, never the real world.
//! Real time and real randomness reach a workflow only through recorded calls (`now-ms`,
//! `random-u64`) or inside steps, whose outcomes are recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// A WASI context whose clocks and random are seeded by `seed` (the workflow id) and start at
/// `epoch_ms` (the workflow's creation time); no files, sockets or environment.
pub(crate) fn virtual_wasi(seed: &str, epoch_ms: i64) -> WasiCtx {
    let digest = Sha256::digest(seed.as_bytes());
    let mut seed128 = [0u8; 16];
    seed128.copy_from_slice(&digest[..16]);
    let seed = u128::from_le_bytes(seed128);
    WasiCtxBuilder::new()
        .wall_clock(VirtualWallClock::new(epoch_ms))
        .monotonic_clock(VirtualMonotonicClock::default())
        .insecure_random_seed(seed)
        .insecure_random(SeededStream::new(seed as u64))
        .secure_random(SeededStream::new((seed >> 64) as u64))
        .build()
}

/// A deterministic byte stream (splitmix64) for WASI's random interfaces: the same seed gives
/// the same bytes on every replay, without a repeating cycle. Not for cryptography — a
/// workflow that needs real secrets must get them from a step.
struct SeededStream {
    state: u64,
}

impl SeededStream {
    fn new(seed: u64) -> Self {
        SeededStream { state: seed }
    }
}

impl rand::TryRng for SeededStream {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|v| (v >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Ok(z ^ (z >> 31))
    }

    fn try_fill_bytes(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
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
