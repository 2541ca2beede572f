//! Per-instance resource limits and the classification of traps.
//!
//! A guest that grows its memory past its limit gets a typed [`OutOfMemory`] error instead of
//! an anonymous `unreachable`, so the host can record *why* an instance died and recover it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Limits applied to every instance (workflow or isolated step) the host creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLimits {
    /// Largest linear memory an instance may grow to, in bytes.
    pub memory_bytes: u64,
    /// Fuel (roughly, wasm instructions) one execution may burn before it traps; bounds
    /// infinite loops deterministically.
    pub fuel: u64,
    /// Largest workflow or step output, in bytes, the host accepts from a guest.
    pub max_output_bytes: u64,
}

impl InstanceLimits {
    /// 64 MiB of memory.
    pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
    /// About ten seconds of a busy loop on these machines.
    pub const DEFAULT_FUEL: u64 = 10_000_000_000;
    /// 16 MiB per output.
    pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 16 << 20;
}

impl Default for InstanceLimits {
    fn default() -> Self {
        InstanceLimits {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            fuel: Self::DEFAULT_FUEL,
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// The error a guest's memory growth returns past its limit; downcast from a call's error.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "out of memory: guest asked to grow linear memory to {desired} bytes, limit is {limit} bytes"
)]
pub struct OutOfMemory {
    /// The size the guest asked for.
    pub desired: usize,
    /// The instance's limit.
    pub limit: usize,
}

/// Enforces [`InstanceLimits::memory_bytes`] with a typed error.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: usize,
}

impl MemoryLimiter {
    /// A limiter refusing growth past `limit_bytes`.
    pub fn new(limit_bytes: u64) -> Self {
        MemoryLimiter {
            limit: usize::try_from(limit_bytes).unwrap_or(usize::MAX),
        }
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            return Err(wasmtime::Error::new(OutOfMemory {
                desired,
                limit: self.limit,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Why an instance stopped abnormally. Stored with the workflow as `trap_class`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapClass {
    /// Memory growth past the instance's limit.
    OutOfMemory,
    /// The wasm stack (or the Rust shadow stack) overflowed.
    StackOverflow,
    /// A Rust panic (reported by the guest's panic hook before the abort).
    Panic,
    /// `unreachable` without a panic report.
    Unreachable,
    /// Fuel ran out.
    CpuLimit,
    /// Anything else: an out-of-bounds access, a bad cast, an integer trap.
    Other,
}

impl TrapClass {
    /// The spelling stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TrapClass::OutOfMemory => "out_of_memory",
            TrapClass::StackOverflow => "stack_overflow",
            TrapClass::Panic => "panic",
            TrapClass::Unreachable => "unreachable",
            TrapClass::CpuLimit => "cpu_limit",
            TrapClass::Other => "other",
        }
    }
}

impl TrapClass {
    /// Every class.
    pub const ALL: [TrapClass; 6] = [
        TrapClass::OutOfMemory,
        TrapClass::StackOverflow,
        TrapClass::Panic,
        TrapClass::Unreachable,
        TrapClass::CpuLimit,
        TrapClass::Other,
    ];

    /// The class stored as `text`, if any.
    pub fn parse(text: &str) -> Option<TrapClass> {
        TrapClass::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

impl fmt::Display for TrapClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified trap with a message fit for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassifiedTrap {
    /// What kind of trap.
    pub class: TrapClass,
    /// What happened, with the panic message when there was one.
    pub message: String,
}

impl fmt::Display for ClassifiedTrap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.message)
    }
}

/// Rust guests keep a shadow stack at the bottom of linear memory that grows down from 1 MiB;
/// overflowing it — by deep recursion or by one huge frame — wraps the stack pointer below
/// zero, so the fault lands in the top half of the 32-bit address space (or, with an offset,
/// just over 4 GiB), far above a memory that is itself under 2 GiB. Wasmtime reports the
/// address and the memory's size only in the trap's text.
fn shadow_stack_overflow(err: &wasmtime::Error) -> bool {
    const HALF: u64 = 1 << 31;
    const WRAP_OFFSET: u64 = (1 << 32) + (16 << 20);
    let text = format!("{err:#}");
    let hex_after = |marker: &str| {
        let rest = text.split(marker).nth(1)?;
        let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        u64::from_str_radix(&hex, 16).ok()
    };
    let Some(address) = hex_after("memory fault at wasm address 0x") else {
        return false;
    };
    let size = hex_after("linear memory of size 0x").unwrap_or(0);
    size < HALF && (HALF..=WRAP_OFFSET).contains(&address)
}

/// Classifies the error of a call into a guest. `panic_message` is what the guest's panic hook
/// reported during that call, if anything.
pub fn classify(err: &wasmtime::Error, panic_message: Option<&str>) -> ClassifiedTrap {
    if let Some(oom) = err.downcast_ref::<OutOfMemory>() {
        return ClassifiedTrap {
            class: TrapClass::OutOfMemory,
            message: oom.to_string(),
        };
    }
    let class = match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::OutOfFuel) => TrapClass::CpuLimit,
        Some(wasmtime::Trap::StackOverflow) => TrapClass::StackOverflow,
        Some(wasmtime::Trap::MemoryOutOfBounds) if shadow_stack_overflow(err) => {
            return ClassifiedTrap {
                class: TrapClass::StackOverflow,
                message: "guest stack overflow: its stack in linear memory grew below address 0"
                    .into(),
            };
        }
        Some(wasmtime::Trap::UnreachableCodeReached) if panic_message.is_some() => TrapClass::Panic,
        Some(wasmtime::Trap::UnreachableCodeReached) => TrapClass::Unreachable,
        _ => TrapClass::Other,
    };
    let message = match (class, panic_message) {
        (TrapClass::Panic, Some(panic)) => format!("guest panicked: {panic}"),
        (TrapClass::CpuLimit, _) => "guest exhausted its CPU budget (fuel)".to_string(),
        _ => format!("{err:#}"),
    };
    ClassifiedTrap { class, message }
}
