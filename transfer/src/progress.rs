//! Progress of long imports and exports: a bar on a terminal, `acked N` lines in a pipe.

use std::io::{IsTerminal, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

use crate::{Format, read};

/// Reports acknowledged points: a bar when stdout is a terminal (towards `total` when it is
/// known, a spinner otherwise), else one `acked N` line on stdout per report.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// `what` labels the bar (`importing`, `exporting`).
    pub fn new(total: Option<u64>, what: &str) -> Self {
        if !std::io::stdout().is_terminal() {
            return Progress { bar: None };
        }
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        let template = if total.is_some() {
            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})"
        } else {
            "{msg} [{elapsed_precise}] {spinner} {pos} ({per_sec})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        Progress { bar: Some(bar) }
    }

    /// For the import of `file`: its format (`format`, else from its name) and a bar
    /// towards its number of points when that is cheap to know.
    pub fn importing(file: &Path, format: Option<Format>) -> (Format, Progress) {
        let format = Format::or_detect(format, file);
        let progress = Progress::new(read::count_hint(file, format), "importing");
        (format, progress)
    }

    /// `total` points are now acknowledged (durable).
    pub fn acked(&self, total: u64) {
        match &self.bar {
            Some(b) => b.set_position(total),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "acked {total}");
                let _ = out.flush();
            }
        }
    }

    /// The work is over: leave the bar as it stands.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}
