//! A component whose initial linear memory is over 128 MiB (a large zeroed static), above the
//! default 64 MiB limit: it loads and runs only when its instance is given more.

use reprise_guest::prelude::*;

const SIZE: usize = 128 << 20;

/// Zeroed, so it costs nothing in the binary but sizes the initial memory. Kept (and touched
/// through volatile accesses) so the optimiser cannot drop it.
#[used]
static mut BIG: [u8; SIZE] = [0; SIZE];

/// Writes `value` at `index` of the big static and reads it back.
#[workflow]
fn touch(index: u32, value: u8) -> u8 {
    let i = index as usize % SIZE;
    // SAFETY: a guest instance is single-threaded, and only this function touches BIG.
    unsafe {
        let cell = (&raw mut BIG).cast::<u8>().add(i);
        cell.write_volatile(value);
        cell.read_volatile()
    }
}

reprise_guest::export!(workflows = [touch], steps = []);
