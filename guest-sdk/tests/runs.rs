//! continue_as_new under the native harness: the run ends, the harness starts the next with an
//! empty history, and the test calls the workflow again with the input it was given.

use reprise_guest::prelude::*;
use reprise_guest::testing::Harness;

#[step]
fn renew(turn: u32) -> Result<u32, String> {
    Ok(turn)
}

#[workflow]
fn subscription(turn: u32) -> Result<u32, String> {
    renew(turn)?;
    if turn >= 2 {
        return Ok(turn);
    }
    continue_as_new(&(turn + 1))
}

#[test]
fn each_turn_is_a_new_run_with_the_input_it_continued_with() {
    let mut harness = Harness::new();
    let mut input = 0;
    let mut turns = 0;
    let output = loop {
        turns += 1;
        match harness.run(|| subscription(input)) {
            Ok(output) => break output,
            Err(_) => {
                let next = harness.continued_as_new().expect("it continued as new");
                input = serde_json::from_value(next).expect("a number");
                assert!(
                    harness.steps().is_empty(),
                    "the next run starts with no history"
                );
            }
        }
    };
    assert_eq!((output, turns), (Ok(2), 3));
    assert_eq!(harness.steps().len(), 1, "the last run's history only");
}
