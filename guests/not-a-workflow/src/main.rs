//! A WASI command, not a Reprise workflow component.

fn main() {
    println!("hello from a component of another world");
}
