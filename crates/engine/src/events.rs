//! Machine-readable events. The runner emits them; sinks turn them into the
//! CMTrace log, `--json` lines or a terminal progress display. Messages in
//! events are already masked: secrets never reach a sink.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        package_id: String,
        name: String,
        instructions: usize,
        steps: usize,
        resumed: bool,
    },
    GroupStart {
        pointer: usize,
        name: String,
    },
    GroupSkipped {
        pointer: usize,
        name: String,
        reason: String,
    },
    StepStart {
        pointer: usize,
        name: String,
        step_type: String,
        /// 1-based position among the steps, and their count.
        n: usize,
        of: usize,
        group: Option<String>,
    },
    StepSkipped {
        pointer: usize,
        name: String,
        reason: String,
    },
    StepSucceeded {
        pointer: usize,
        name: String,
        exit_code: i64,
        millis: u128,
    },
    StepFailed {
        pointer: usize,
        name: String,
        exit_code: i64,
        error: String,
        continue_on_error: bool,
    },
    GroupFailed {
        name: String,
    },
    GroupIgnoredFailure {
        name: String,
    },
    RebootRequested {
        name: String,
        target: String,
    },
    Output {
        name: String,
        text: String,
    },
    Message {
        level: Level,
        text: String,
    },
    Finished {
        result: String,
        exit_code: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

pub trait EventSink {
    fn event(&mut self, e: &Event);
}

/// Keeps every event (tests, `--what-if`).
#[derive(Debug, Default)]
pub struct Collect(pub Vec<Event>);

impl EventSink for Collect {
    fn event(&mut self, e: &Event) {
        self.0.push(e.clone());
    }
}

/// One JSON object per line.
pub struct JsonLines<W: std::io::Write>(pub W);

impl<W: std::io::Write> EventSink for JsonLines<W> {
    fn event(&mut self, e: &Event) {
        if let Ok(s) = serde_json::to_string(e) {
            // A closed stdout must not stop the run.
            let _ = writeln!(self.0, "{s}");
            let _ = self.0.flush();
        }
    }
}

/// Replaces every secret value in `text` with asterisks (longest first, so a
/// secret containing another is masked whole).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut s: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    s.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for sec in s {
        if out.contains(sec.as_str()) {
            out = out.replace(sec.as_str(), "********");
        }
    }
    out
}
