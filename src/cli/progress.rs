//! Live progress on stderr: a progress bar on a terminal, one line per finished test otherwise
//! (CI logs), so long runs never look hung.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};

use kfconform_suite::report::Status;
use kfconform_suite::runner::Event;

/// Prints run events.
pub struct Progress {
    bar: Option<ProgressBar>,
    done: Mutex<(usize, usize)>,
}

impl Progress {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(0);
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} [{pos}/{len}] {elapsed_precise} {wide_msg}")
            {
                b.set_style(style);
            }
            b.enable_steady_tick(std::time::Duration::from_millis(120));
            b
        });
        Progress {
            bar,
            done: Mutex::new((0, 0)),
        }
    }

    fn line(&self, s: String) {
        match &self.bar {
            Some(b) => b.println(s),
            None => crate::errln!("{s}"),
        }
    }

    /// Shows one event.
    pub fn event(&self, e: Event) {
        match e {
            Event::Planned {
                run_id,
                to_run,
                total,
            } => {
                if let Ok(mut d) = self.done.lock() {
                    *d = (0, total);
                }
                if let Some(b) = &self.bar {
                    b.set_length(total as u64);
                }
                self.line(format!("run {run_id}: {to_run} of {total} tests to run"));
            }
            Event::Started { id } => {
                if let Some(b) = &self.bar {
                    b.set_message(id);
                }
            }
            Event::Finished { result } => {
                let (n, total) = self
                    .done
                    .lock()
                    .map(|mut d| {
                        d.0 += 1;
                        *d
                    })
                    .unwrap_or((0, 0));
                if let Some(b) = &self.bar {
                    b.inc(1);
                }
                if result.status == Status::Skipped && self.bar.is_some() {
                    return;
                }
                let tag = match result.status {
                    Status::Passed => "PASS ",
                    Status::Failed => "FAIL ",
                    Status::Skipped => "SKIP ",
                    Status::Error => "ERROR",
                };
                let width = total.to_string().len();
                let mut s = format!(
                    "[{n:>width$}/{total}] {tag} {} ({:.2}s)",
                    result.id, result.duration_seconds
                );
                if !result.message.is_empty() {
                    s.push_str(": ");
                    s.push_str(&result.message);
                }
                self.line(s);
            }
            Event::CleaningUp => {
                if let Some(b) = &self.bar {
                    b.set_message("deleting the run's namespaces");
                }
            }
        }
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
