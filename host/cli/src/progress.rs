//! Progress of long CLI work (`enqueue --count N --wait`, `recover`, `bench`): a bar on a
//! terminal, and on anything else a plain line at each tenth, so logs and CI output stay
//! readable. Always on stderr; stdout keeps the results.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// One counted task: `what` done out of `total`.
pub struct Progress {
    what: &'static str,
    total: u64,
    done: u64,
    bar: Option<ProgressBar>,
    /// The last tenth reported as a plain line.
    reported: u64,
}

impl Progress {
    /// Progress of `total` things, each `what` when done ("enqueued", "finished").
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            what,
            total,
            done: 0,
            bar,
            reported: 0,
        }
    }

    /// One more done.
    pub fn inc(&mut self) {
        self.done += 1;
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => {
                let tenth = self.done * 10 / self.total.max(1);
                if tenth > self.reported || self.done == self.total {
                    self.reported = tenth;
                    eprintln!("{} {}/{}", self.what, self.done, self.total);
                }
            }
        }
    }

    /// Prints a line of results above the bar (or as is, without one).
    pub fn println(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| println!("{line}")),
            None => println!("{line}"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
