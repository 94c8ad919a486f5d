//! How the firmware tools show a transfer: a progress bar (`indicatif`) when stdout is a
//! terminal, otherwise a plain line whenever the state changes or another 10 % is done, so
//! that a log or a pipe gets a few lines instead of a redrawn bar.

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Plain output prints a line every this many percent.
const LINE_STEP_PCT: u64 = 10;

/// One transfer's progress, shown on stdout.
#[derive(Debug)]
pub enum Progress {
    Bar(ProgressBar),
    Lines {
        label: String,
        last: Option<(String, u64)>,
    },
}

impl Progress {
    /// A progress of `label` (the node), out of 100 (percent) until [`Progress::set`] says
    /// otherwise.
    #[must_use]
    pub fn new(label: &str) -> Self {
        if std::io::stdout().is_terminal() {
            let bar = ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stdout());
            let style = ProgressStyle::with_template(
                "{prefix} {msg:>12} [{bar:32}] {percent:>3}% {elapsed_precise}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_owned());
            Self::Bar(bar)
        } else {
            Self::Lines {
                label: label.to_owned(),
                last: None,
            }
        }
    }

    /// `done` of `total` (bytes or percent) in state `state`.
    pub fn set(&mut self, state: &str, done: u64, total: u64) {
        let total = total.max(1);
        let done = done.min(total);
        match self {
            Self::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.set_message(state.to_owned());
            }
            Self::Lines { label, last } => {
                let pct = done * 100 / total;
                let step = pct / LINE_STEP_PCT;
                let changed = match last {
                    Some((s, p)) => s != state || *p / LINE_STEP_PCT != step,
                    None => true,
                };
                if changed {
                    println!("{label} {state} {pct}%");
                    *last = Some((state.to_owned(), pct));
                }
            }
        }
    }

    /// A state without a measure of progress (queued, waiting for the bay).
    pub fn state(&mut self, state: &str) {
        match self {
            Self::Bar(bar) => bar.set_message(state.to_owned()),
            Self::Lines { label, last } => {
                if last.as_ref().is_none_or(|(s, _)| s != state) {
                    println!("{label} {state}");
                    *last = Some((state.to_owned(), last.as_ref().map_or(0, |(_, p)| *p)));
                }
            }
        }
    }

    /// Ends the bar (it stays on the screen, the cursor on the next line); the caller prints
    /// the outcome.
    pub fn finish(self) {
        if let Self::Bar(bar) = self {
            bar.finish();
            // The bar leaves the cursor at its end.
            println!();
        }
    }
}
