//! Workflows that misbehave in every way a guest can: the host's limits, trap classification
//! and non-determinism detection are tested with them.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reprise_guest::prelude::*;
use serde::Serialize;
use serde_json::Value;

/// Never returns: exhausts the host's CPU (fuel or epoch) limit.
#[workflow]
fn spin() {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Non-tail recursion `depth` deep: overflows the wasm stack when `depth` is large.
fn descend(depth: u64) -> u64 {
    if black_box(depth) == 0 {
        return 0;
    }
    let frame = black_box([depth; 16]);
    black_box(descend(depth - 1)) + frame[black_box(depth as usize) % 16]
}

/// Recurses `depth` deep and returns a sum over the frames.
#[workflow]
fn recurse(depth: u64) -> u64 {
    descend(depth)
}

/// Puts one frame of `mib` MiB on the stack: far past the 1 MiB shadow stack in one step.
#[workflow]
fn big_frame(mib: u32) -> u8 {
    let frame = black_box([7u8; 24 << 20]);
    frame[black_box(mib as usize) % frame.len()]
}

/// Panics with `msg`: the panic hook reports it before the abort traps.
#[workflow]
fn panic(msg: String) {
    panic!("{msg}");
}

/// Executes the `unreachable` instruction: a bare trap.
#[workflow]
fn unreachable() {
    core::arch::wasm32::unreachable()
}

/// A step recorded under the name `first`.
#[step]
fn first() -> Result<u32, String> {
    Ok(1)
}

/// A step recorded under the name `second`.
#[step]
fn second() -> Result<u32, String> {
    Ok(2)
}

/// Runs step `first` and traps on the first execution; on recovery it runs step `second`
/// at the same position instead, which the host must detect as non-determinism.
#[workflow]
fn nondeterministic() -> Result<u32, String> {
    if workflow_info().recovery_attempt == 0 {
        first()?;
        core::arch::wasm32::unreachable()
    }
    Ok(second()?)
}

/// Returns a string of `bytes` 'x's: output size limits.
#[workflow]
fn big_output(bytes: u32) -> String {
    "x".repeat(usize::try_from(bytes).unwrap_or(usize::MAX))
}

/// Returns its input unchanged: input encoding tests.
#[workflow]
fn echo(v: Value) -> Value {
    v
}

/// Sleeps durably for `ms` milliseconds, then returns "awake".
#[workflow]
fn sleepy(ms: u64) -> String {
    sleep(Duration::from_millis(ms));
    "awake".to_owned()
}

/// Starts a child `sleepy(ms)` and awaits it: the child inherits this workflow's deadline.
#[workflow]
fn sleepy_parent(ms: u64) -> Result<String, String> {
    let child = start_child::<String, _>("sleepy", &ms)?;
    Ok(child.result()?)
}

/// The times a schedule's firing was due and started at, or null outside a schedule.
#[workflow]
fn when_scheduled() -> Option<Value> {
    scheduled().map(|s| {
        serde_json::json!({ "scheduled_at": s.scheduled_at_ms, "started_at": s.started_at_ms })
    })
}

/// What `clock` saw: the durable clock and random values next to what plain std APIs return,
/// which the host makes deterministic too.
#[derive(Serialize)]
struct Clock {
    now_ms: u64,
    random: u64,
    system_time_ms: u64,
    hash_map: Vec<(u32, u32)>,
}

/// Reads the time and randomness through the durable API and through std (WASI clocks and the
/// random seed of `HashMap`'s hasher).
#[workflow]
fn clock() -> Result<Clock, String> {
    let system_time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let map: HashMap<u32, u32> = (0..16).map(|i| (i, i * i)).collect();
    Ok(Clock {
        now_ms: now_ms(),
        random: random_u64(),
        system_time_ms: u64::try_from(system_time_ms).unwrap_or(u64::MAX),
        hash_map: map.into_iter().collect(),
    })
}

/// What one reading of the world saw: 16 bytes from `getentropy` (wasi-libc, as C code and
/// most crates get them) and the wall clock.
#[derive(Serialize, serde::Deserialize)]
struct Draw {
    bytes: Vec<u8>,
    time_ms: u64,
}

unsafe extern "C" {
    /// wasi-libc's `getentropy`, backed by `wasi:random`.
    fn getentropy(buf: *mut u8, len: usize) -> i32;
}

fn draw() -> Result<Draw, String> {
    let mut bytes = vec![0u8; 16];
    // SAFETY: the buffer is valid for 16 bytes, at most 256 may be asked for.
    if unsafe { getentropy(bytes.as_mut_ptr(), bytes.len()) } != 0 {
        return Err("getentropy failed".into());
    }
    let time_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    Ok(Draw {
        bytes,
        time_ms: u64::try_from(time_ms).unwrap_or(u64::MAX),
    })
}

/// A draw made by step code, inline.
#[step]
fn draw_in_step() -> Result<Draw, String> {
    draw()
}

/// A draw made by step code in a fresh instance.
#[step(isolated)]
fn draw_isolated() -> Result<Draw, String> {
    draw()
}

/// Draws in workflow code, in an inline step and in an isolated step: workflow code must see
/// replayable values, step code the real clock and real entropy.
#[workflow]
fn entropy() -> Result<[Draw; 3], String> {
    let in_workflow = draw()?;
    // Real time passes before the steps draw; the virtual clock does not move with it.
    sleep(Duration::from_millis(30));
    let in_step = draw_in_step()?;
    let isolated = draw_isolated()?;
    Ok([in_workflow, in_step, isolated])
}

/// Burns about `n` loop iterations of CPU and returns a sum over them.
#[step(retries = false)]
fn burn(n: u64) -> Result<u64, String> {
    let mut sum: u64 = 0;
    for i in 0..n {
        sum = black_box(sum.wrapping_add(i));
    }
    Ok(sum)
}

/// Runs `steps` steps that each burn `n` iterations: a long workflow whose every stretch is
/// short.
#[workflow]
fn chain(steps: u32, n: u64) -> Result<u64, String> {
    let mut total: u64 = 0;
    for _ in 0..steps {
        total = total.wrapping_add(burn(n)?);
    }
    Ok(total)
}

/// An isolated step deliberately left out of `export!`: it registers itself, so a fresh
/// instance finds it all the same.
#[step(isolated, max_attempts = 5, interval_ms = 10)]
fn unlisted() -> Result<u32, String> {
    Ok(1)
}

/// Calls the isolated step that `export!` does not list.
#[workflow]
fn calls_unlisted() -> Result<u32, String> {
    Ok(unlisted()?)
}

/// Blocks the instance for `ms` milliseconds inside a step, as a blocking client would.
#[step(retries = false)]
fn block(ms: u64) -> Result<u64, String> {
    std::thread::sleep(Duration::from_millis(ms));
    Ok(ms)
}

/// Runs one step that blocks for `ms` milliseconds.
#[workflow]
fn blocked(ms: u64) -> Result<u64, String> {
    Ok(block(ms)?)
}

/// Spins in a busy loop, never calling the host, on its first `spinning` attempts; then
/// answers with the attempt number. Each attempt has 200 ms.
#[step(timeout_ms = 200, max_attempts = 3, interval_ms = 10)]
fn spin_then_answer(spinning: u32) -> Result<u32, String> {
    let attempt = step_status().map_or(1, |s| s.attempt);
    if attempt <= spinning {
        let mut x = 0u64;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }
    Ok(attempt)
}

/// Runs `spin_then_answer`: which attempt answered, or every attempt's error.
#[workflow]
fn timed(spinning: u32) -> Result<String, String> {
    match spin_then_answer(spinning) {
        Ok(attempt) => Ok(format!("answered on attempt {attempt}")),
        Err(StepError::MaxRetriesExceeded(e)) => Err(format!("gave up: {}", e.errors.join(" | "))),
        Err(e) => Err(e.to_string()),
    }
}

/// One of `relay`'s steps: says which it is in the log (what the many-hosts tests count as an
/// execution), then takes `ms` milliseconds.
#[step(retries = false)]
fn tick(i: u32, ms: u64) -> Result<u32, String> {
    info!("tick {i}");
    std::thread::sleep(Duration::from_millis(ms));
    Ok(i)
}

/// Five steps of `ms` milliseconds each, at positions 0 to 4; returns the sum of their
/// numbers (10).
#[workflow]
fn relay(ms: u64) -> Result<u32, String> {
    let mut sum = 0;
    for i in 0..5 {
        sum += tick(i, ms)?;
    }
    Ok(sum)
}

/// Two `tick` steps with `n` iterations of busy workflow code between them, which says "gap"
/// in the log as it begins: a host paused there has committed the first step and not begun
/// the second. Returns 1.
#[workflow]
fn gapped(n: u64) -> Result<u32, String> {
    let first = tick(0, 0)?;
    info!("gap");
    let mut sum: u64 = 0;
    for i in 0..n {
        sum = black_box(sum.wrapping_add(i));
    }
    black_box(sum);
    Ok(first + tick(1, 0)?)
}

/// Starts a `relay` child under the id `victim` and says what the host answered: a workflow
/// may not take over another's id.
#[workflow]
fn claim_id(victim: String) -> Result<String, String> {
    match Child::new("relay").id(victim).start::<u32, _>(&1u64) {
        Ok(handle) => Ok(format!("started {}", handle.id())),
        Err(e) => Err(e.to_string()),
    }
}

/// Starts `n` `echo` children and awaits each: `"ok"` or the error, per child.
#[workflow]
fn fan_out(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| match start_child::<Value, _>("echo", &i) {
            Ok(child) => match child.result() {
                Ok(_) => "ok".to_string(),
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        })
        .collect()
}

/// Writes `n` values of `size` bytes to the stream `flood`: how many were written, and the
/// error that stopped it, if one did.
#[workflow]
fn flood(n: u32, size: u32) -> (u32, Option<String>) {
    let value = "x".repeat(size.saturating_sub(2) as usize);
    for i in 0..n {
        if let Err(e) = write_stream("flood", &value) {
            return (i, Some(e.to_string()));
        }
    }
    (n, None)
}

/// Logs `line` as it is, whatever it holds.
#[workflow]
fn say(line: String) {
    info!("{line}");
}

/// Fails its first attempt on purpose and answers `i * 10` on the next.
#[step(max_attempts = 3, interval_ms = 10)]
fn flaky(i: u32) -> Result<u32, String> {
    let attempt = step_status().map_or(1, |s| s.attempt);
    if attempt == 1 {
        return Err(format!("flaky({i}) fails its first attempt"));
    }
    Ok(i * 10)
}

/// Everything a trace shows: a step, a step that succeeds on its retry, a child workflow,
/// then a trap on the first execution only, so the recovery replays all of it and runs the
/// last step. Returns 1 + 10n + (1 + n) + 2.
#[workflow]
fn traced(n: u32) -> Result<u32, String> {
    let a = first()?;
    let b = flaky(n)?;
    let c = start_child::<u32, _>("traced_child", &n)?.result()?;
    if workflow_info().recovery_attempt == 0 {
        core::arch::wasm32::unreachable()
    }
    let d = second()?;
    Ok(a + b + c + d)
}

/// `traced`'s child: one step; returns 1 + n.
#[workflow]
fn traced_child(n: u32) -> Result<u32, String> {
    Ok(first()? + n)
}

reprise_guest::export!(
    workflows = [
        spin,
        recurse,
        big_frame,
        panic,
        unreachable,
        nondeterministic,
        big_output,
        echo,
        sleepy,
        sleepy_parent,
        when_scheduled,
        clock,
        entropy,
        blocked,
        chain,
        calls_unlisted,
        relay,
        gapped,
        claim_id,
        say,
        traced,
        traced_child,
        fan_out,
        flood,
    ],
    steps = [first, second, draw_in_step, draw_isolated, block, burn, tick, flaky],
);
