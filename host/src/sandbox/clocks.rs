//! An instance's clocks and random.
//!
//! Workflow code must be deterministic for replay to be sound, so while it runs WASI's clocks
//! and random sources are functions of the workflow id and the call position, never the real
//! world. Step code is not replayed (its outcome is recorded), so while a step attempt runs
//! the same interfaces give the real clock and real entropy: a nonce or token made in a step
//! must not be predictable from the workflow id. Readings inside a step do not advance the
//! virtual sequence, so workflow code sees the same values on every replay.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtxBuilder};

use super::StepPhase;

/// Gives `builder` clocks and random that, outside steps, are seeded by `seed` (the workflow
/// id) and start at `epoch_ms` (the workflow's creation time).
pub(super) fn add_virtual_time(
    builder: &mut WasiCtxBuilder,
    seed: &str,
    epoch_ms: i64,
    phase: &StepPhase,
) {
    let digest = Sha256::digest(seed.as_bytes());
    let mut seed128 = [0u8; 16];
    seed128.copy_from_slice(&digest[..16]);
    let seed = u128::from_le_bytes(seed128);
    builder
        .wall_clock(WallClock::new(epoch_ms, phase.clone()))
        .monotonic_clock(MonotonicClock {
            readings: AtomicU64::new(0),
            phase: phase.clone(),
        })
        .insecure_random_seed(seed)
        .insecure_random(Random::new(seed as u64, phase.clone()))
        .secure_random(Random::new((seed >> 64) as u64, phase.clone()));
}

/// Outside steps, a deterministic byte stream (splitmix64): the same seed gives the same bytes
/// on every replay, without a repeating cycle. Inside steps, the operating system's entropy.
struct Random {
    state: u64,
    phase: StepPhase,
}

impl Random {
    fn new(seed: u64, phase: StepPhase) -> Self {
        Random { state: seed, phase }
    }

    fn next_seeded(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Real entropy for a step; should the OS refuse, the process's randomly keyed hasher, which
/// is still unpredictable from the workflow id.
fn fill_real(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        use std::hash::{BuildHasher, Hasher};
        for chunk in buf.chunks_mut(8) {
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_usize(chunk.as_ptr() as usize);
            chunk.copy_from_slice(&hasher.finish().to_le_bytes()[..chunk.len()]);
        }
    }
}

impl rand::TryRng for Random {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.try_next_u64().map(|v| (v >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, buf: &mut [u8]) -> Result<(), Self::Error> {
        if self.phase.in_step() {
            fill_real(buf);
            return Ok(());
        }
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_seeded().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// Outside steps each reading advances by one microsecond from the workflow's creation time,
/// so the n-th reading is the same on every replay; inside steps, the real time.
struct WallClock {
    epoch: Duration,
    readings: AtomicU64,
    phase: StepPhase,
}

impl WallClock {
    fn new(epoch_ms: i64, phase: StepPhase) -> Self {
        WallClock {
            epoch: Duration::from_millis(u64::try_from(epoch_ms).unwrap_or(0)),
            readings: AtomicU64::new(0),
            phase,
        }
    }
}

impl HostWallClock for WallClock {
    fn resolution(&self) -> Duration {
        Duration::from_micros(1)
    }

    fn now(&self) -> Duration {
        if self.phase.in_step() {
            return SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
        }
        let n = self.readings.fetch_add(1, Ordering::Relaxed);
        self.epoch + Duration::from_micros(n)
    }
}

/// Outside steps starts at zero and advances by one microsecond per reading; inside steps,
/// nanoseconds of the process's real monotonic clock.
struct MonotonicClock {
    readings: AtomicU64,
    phase: StepPhase,
}

impl HostMonotonicClock for MonotonicClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        if self.phase.in_step() {
            static START: OnceLock<Instant> = OnceLock::new();
            let elapsed = START.get_or_init(Instant::now).elapsed();
            return u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        }
        self.readings.fetch_add(1, Ordering::Relaxed) * 1_000
    }
}
