//! The live progress line of `splitbrain run`: elapsed time, ops/s, ok / fail
//! / info counts and the current fault. Hidden when stdout is not a terminal,
//! so logs and CI output stay clean.

use crate::workers::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    /// Starts redrawing the line four times a second. `now` says what is
    /// going on: the current fault, or the phase after the main one.
    pub fn start(counts: Arc<Counts>, now: Arc<Mutex<String>>) -> Progress {
        let bar = if std::io::stdout().is_terminal() {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        let line = bar.clone();
        let ticker = tokio::spawn(async move {
            let started = Instant::now();
            let mut interval = tokio::time::interval(Duration::from_millis(250));
            loop {
                interval.tick().await;
                let elapsed = started.elapsed().as_secs_f64();
                let now = now.lock().expect("lock").clone();
                line.set_message(format!(
                    "{elapsed:5.1} s  {:6.0} ops/s  ok {}  fail {}  info {}  {}",
                    counts.total() as f64 / elapsed.max(1e-3),
                    counts.ok.load(Ordering::Relaxed),
                    counts.fail.load(Ordering::Relaxed),
                    counts.info.load(Ordering::Relaxed),
                    if now.is_empty() { "no fault" } else { &now },
                ));
                line.tick();
            }
        });
        Progress { bar, ticker }
    }
}

/// Dropping the line clears it, also when a run ends in an error.
impl Drop for Progress {
    fn drop(&mut self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
