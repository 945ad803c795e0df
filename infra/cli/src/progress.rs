//! Progress on stderr for long reads and builds, drawn only when stderr is a terminal so
//! that logs, pipes and CI output stay clean.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A progress indicator that is a byte bar while reading and a spinner while working.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A progress indicator on stderr, hidden when stderr is not a terminal.
    pub fn on_stderr() -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }

    /// Switches to a bar over `total` bytes.
    pub fn bytes(&self, total: u64, message: &'static str) {
        self.bar.disable_steady_tick();
        self.bar.set_style(
            ProgressStyle::with_template(
                "{msg:>10} [{bar:30}] {binary_bytes}/{binary_total_bytes} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_message(message);
    }

    /// Advances the byte bar.
    pub fn advance(&self, bytes: u64) {
        self.bar.inc(bytes);
    }

    /// Switches to a spinner naming the stage that is running.
    pub fn stage(&self, message: impl Into<String>) {
        self.bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        self.bar.set_message(message.into());
        // The work runs in one call; the tick thread keeps the spinner alive meanwhile.
        self.bar.enable_steady_tick(Duration::from_millis(120));
    }

    /// Removes the indicator, before results are printed.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
