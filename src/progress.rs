//! One progress style for the long-running commands (`import`, `fsck`, `migrate`, `bench`):
//! an indicatif bar on a terminal, and otherwise a plain `label done/total (pct%)` line per
//! tenth on stdout, which scripts and tests can read.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// A progress report for one stage; cheap to clone (clones report to the same bar).
#[derive(Clone)]
pub struct Progress(Arc<Inner>);

struct Inner {
    label: String,
    total: AtomicU64,
    done: AtomicU64,
    /// The last tenth printed in line mode.
    shown: AtomicU64,
    bar: Option<ProgressBar>,
    lines: bool,
    /// Line mode writes to stderr (for commands whose stdout is data, like `bench`).
    to_stderr: bool,
    started: Instant,
}

impl Progress {
    /// A bar on a terminal, lines otherwise.
    pub fn new(label: &str, total: u64) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self::build(label, total, tty, !tty, false)
    }

    /// As [`Progress::new`], with the plain lines on stderr.
    pub fn on_stderr(label: &str, total: u64) -> Self {
        let tty = std::io::stderr().is_terminal();
        Self::build(label, total, tty, !tty, true)
    }

    /// Reports nothing (library callers, tests).
    pub fn hidden() -> Self {
        Self::build("", 0, false, false, false)
    }

    fn build(label: &str, total: u64, tty: bool, lines: bool, to_stderr: bool) -> Self {
        let bar = tty.then(|| {
            let b = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{prefix:<14} [{bar:30}] {human_pos}/{human_len} ({percent}%) {per_sec} eta {eta} {wide_msg}",
                )
                .expect("a valid template")
                .progress_chars("#>-"),
            );
            b.set_prefix(label.to_string());
            b
        });
        let p = Progress(Arc::new(Inner {
            label: label.to_string(),
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
            shown: AtomicU64::new(u64::MAX),
            bar,
            lines,
            to_stderr,
            started: Instant::now(),
        }));
        p.line();
        p
    }

    /// The total became known (or grew).
    pub fn set_total(&self, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
        if let Some(b) = &self.0.bar {
            b.set_length(total);
        }
    }

    pub fn add(&self, n: u64) {
        self.0.done.fetch_add(n, Ordering::Relaxed);
        if let Some(b) = &self.0.bar {
            b.inc(n);
        }
        self.line();
    }

    /// A short note beside the bar (the file in hand).
    pub fn message(&self, m: &str) {
        if let Some(b) = &self.0.bar {
            b.set_message(m.to_string());
        }
    }

    /// Prints a line without breaking the bar.
    pub fn println(&self, m: &str) {
        match &self.0.bar {
            Some(b) => b.println(m),
            None => self.say(m),
        }
    }

    pub fn finish(&self) {
        let secs = self.0.started.elapsed().as_secs_f64();
        if let Some(b) = &self.0.bar {
            b.finish_with_message(format!("{secs:.1} s"));
        } else if self.0.lines {
            self.say(&format!("{:<14} done in {secs:.1} s", self.0.label));
        }
    }

    fn line(&self) {
        if !self.0.lines {
            return;
        }
        let (done, total) = (
            self.0.done.load(Ordering::Relaxed),
            self.0.total.load(Ordering::Relaxed),
        );
        let tenth = (done * 10).checked_div(total).unwrap_or(10);
        if self.0.shown.swap(tenth, Ordering::Relaxed) != tenth {
            let pct = (done * 100).checked_div(total).unwrap_or(100);
            self.say(&format!("{:<14} {done}/{total} ({pct}%)", self.0.label));
        }
    }

    fn say(&self, m: &str) {
        if self.0.to_stderr {
            eprintln!("{m}");
        } else {
            println!("{m}");
            let _ = std::io::stdout().flush();
        }
    }
}
