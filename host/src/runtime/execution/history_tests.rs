use super::*;

fn step(function_id: u32, name: &str) -> StepRecord {
    StepRecord {
        workflow_id: "wf".into(),
        function_id,
        name: name.into(),
        output: Some("1".into()),
        error: None,
        attempts: 1,
        started_at: 0,
        completed_at: 0,
        epoch: None,
        committed_epoch: None,
        args: None,
    }
}

fn with_args(function_id: u32, name: &str, args: &str) -> StepRecord {
    StepRecord {
        args: Some(args.into()),
        ..step(function_id, name)
    }
}

#[test]
fn replays_recorded_positions_then_executes() {
    let mut history = History::new("wf", vec![step(0, "a"), step(1, "b")]);
    assert!(matches!(history.claim(&Call::named("a")), Ok(Position::Replay(s)) if s.name == "a"));
    assert!(
        matches!(history.claim(&Call::named("b")), Ok(Position::Replay(s)) if s.function_id == 1)
    );
    assert!(matches!(
        history.claim(&Call::named("c")),
        Ok(Position::Execute(2))
    ));
}

#[test]
fn replaying_lasts_while_recorded_positions_lie_ahead() {
    let mut history = History::new("wf", vec![step(0, "a"), step(1, "b")]);
    assert!(history.replaying());
    history.claim(&Call::named("a")).expect("replay");
    assert!(history.replaying());
    history.claim(&Call::named("b")).expect("replay");
    assert!(
        !history.replaying(),
        "past the last recorded position, code runs anew"
    );
}

#[test]
fn a_different_name_at_a_recorded_position_is_non_determinism() {
    let mut history = History::new("wf", vec![step(0, "a")]);
    let err = history.claim(&Call::named("z")).unwrap_err();
    assert_eq!(
        (
            err.function_id,
            err.recorded.as_str(),
            err.requested.as_str()
        ),
        (0, "\"a\"", "\"z\"")
    );
    assert_eq!(err.divergence, Divergence::Call);
    assert!(err.to_string().contains("non-determinism"));
}

#[test]
fn a_child_started_with_another_input_diverges_but_a_sleep_of_another_length_does_not() {
    let child = recorded::start_child("charge");
    let recorded_args = digest(&[b"charge", b"{\"cents\":100}"]);
    let mut history = History::new(
        "wf",
        vec![
            with_args(0, recorded::SLEEP, &digest(&[b"1000"])),
            with_args(1, &child, &recorded_args),
        ],
    );
    let sleep = Call::with_args(recorded::SLEEP, &[b"2000"]);
    assert!(matches!(history.claim(&sleep), Ok(Position::Replay(_))));
    let other = Call::with_args(child.clone(), &[b"charge", b"{\"cents\":999}"]);
    let err = history.claim(&other).unwrap_err();
    assert_eq!(err.divergence, Divergence::Arguments);
    assert!(err.recorded.contains(&recorded_args), "{}", err.recorded);
    assert!(
        err.to_string().contains("must be the same on replay"),
        "{err}"
    );
}

#[test]
fn rows_without_a_digest_are_checked_by_name_only() {
    let mut history = History::new("wf", vec![step(0, recorded::SEND)]);
    let send = Call::with_args(recorded::SEND, &[b"order-1", b"ship"]);
    assert!(matches!(history.claim(&send), Ok(Position::Replay(_))));
}

#[test]
fn the_digest_of_an_executed_call_is_kept_for_its_record() {
    let mut history = History::new("wf", Vec::new());
    let send = Call::with_args(recorded::SEND, &[b"order-1", b"ship"]);
    assert!(matches!(history.claim(&send), Ok(Position::Execute(0))));
    assert_eq!(history.args_of(0), send.args);
    assert_ne!(
        digest(&[b"ab", b"c"]),
        digest(&[b"a", b"bc"]),
        "parts are delimited"
    );
}

#[test]
fn a_patch_is_true_where_recorded_or_new_and_false_where_the_old_code_went_on() {
    let marker = recorded::patch("fix");
    // Started before the patch: step b was recorded where the patch now asks.
    let mut old = History::new("wf", vec![step(0, "a"), step(1, "b")]);
    old.claim(&Call::named("a")).expect("replay");
    assert!(
        old.patch("fix").is_none(),
        "the old branch, nothing claimed"
    );
    assert!(matches!(
        old.claim(&Call::named("b")),
        Ok(Position::Replay(_))
    ));
    // Started after it: the marker is replayed.
    let mut new = History::new("wf", vec![step(0, "a"), step(1, &marker)]);
    new.claim(&Call::named("a")).expect("replay");
    assert!(matches!(new.patch("fix"), Some(Position::Replay(_))));
    // Reaching the patch for the first time records it.
    let mut fresh = History::new("wf", vec![step(0, "a")]);
    fresh.claim(&Call::named("a")).expect("replay");
    assert!(matches!(fresh.patch("fix"), Some(Position::Execute(1))));
}

#[test]
fn ending_with_recorded_positions_left_is_a_divergence() {
    let mut history = History::new("wf", vec![step(0, "a"), step(1, "b"), step(2, "c")]);
    history.claim(&Call::named("a")).expect("replay");
    let err = history.unconsumed("returned").expect("positions were left");
    assert_eq!(err.divergence, Divergence::Unconsumed { left: 2 });
    assert_eq!(err.function_id, 1);
    assert!(err.to_string().contains("returned at position 1"), "{err}");
    history.claim(&Call::named("b")).expect("replay");
    history.claim(&Call::named("c")).expect("replay");
    assert!(history.unconsumed("returned").is_none());
}

#[test]
fn a_move_to_other_code_is_stepped_over_and_never_left_unconsumed() {
    let steps = vec![step(0, "a"), step(1, recorded::UPGRADE)];
    let mut ended = History::new("wf", steps.clone());
    ended.claim(&Call::named("a")).expect("replay");
    assert!(ended.unconsumed("ended").is_none(), "the record is no call");
    let mut going_on = History::new("wf", steps);
    going_on.claim(&Call::named("a")).expect("replay");
    assert_eq!(going_on.next_position(), 2);
    assert!(matches!(
        going_on.claim(&Call::named("b")),
        Ok(Position::Execute(2))
    ));
}
