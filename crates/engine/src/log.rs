//! `smsts.log` in CMTrace format, and a parser for such logs.
//!
//! Each record is `<![LOG[message]LOG]!><time="HH:MM:SS.mmm+000"
//! date="MM-DD-YYYY" component="TSManager" context="" type="1" thread="N"
//! file="...">` on its own line (the message may span lines). Times are UTC,
//! so the bias is `+000`. The lines follow ConfigMgr's wording where admins
//! and tools search for it ("Start executing an instruction…", "Successfully
//! completed the action (…) with the exit win32 code 0", …). When the file
//! would pass `max_size` it is renamed `smsts-YYYYMMDD-HHMMSS.log` and a new
//! one started. Messages arrive masked from the runner.

use crate::events::{Event, EventSink, Level};
use std::io::Write;
use std::path::{Path, PathBuf};

pub const DEFAULT_MAX_SIZE: u64 = 1 << 20;

/// Seconds since 1970 → (year, month, day, hour, minute, second).
pub fn civil(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn now() -> (i64, u32) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_millis())
}

/// One CMTrace record.
pub fn format_record(
    message: &str,
    component: &str,
    kind: u8,
    thread: u32,
    file: &str,
    at: (i64, u32),
) -> String {
    let (y, mo, d, h, mi, s) = civil(at.0);
    // "]LOG]!>" inside a message would end the record early.
    let message = message
        .replace("]LOG]!>", "]LOG]!)")
        .replace("<![LOG[", "<!(LOG[");
    format!(
        "<![LOG[{message}]LOG]!><time=\"{h:02}:{mi:02}:{s:02}.{:03}+000\" date=\"{mo:02}-{d:02}-{y:04}\" component=\"{component}\" context=\"\" type=\"{kind}\" thread=\"{thread}\" file=\"{file}\">\n",
        at.1
    )
}

pub struct LogSink {
    dir: PathBuf,
    max_size: u64,
    file: Option<std::fs::File>,
    size: u64,
    thread: u32,
}

impl LogSink {
    pub fn new(dir: &Path, max_size: u64) -> LogSink {
        let _ = std::fs::create_dir_all(dir);
        LogSink {
            dir: dir.to_path_buf(),
            max_size: max_size.max(1024),
            file: None,
            size: 0,
            thread: std::process::id(),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("smsts.log")
    }

    fn roll(&mut self) {
        self.file = None;
        let (secs, _) = now();
        let (y, mo, d, h, mi, s) = civil(secs);
        let mut name = format!("smsts-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}.log");
        let mut n = 1;
        while self.dir.join(&name).exists() {
            name = format!("smsts-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{n}.log");
            n += 1;
        }
        let _ = std::fs::rename(self.path(), self.dir.join(name));
        self.size = 0;
    }

    pub fn write(&mut self, message: &str, component: &str, kind: u8, file: &str) {
        let line = format_record(message, component, kind, self.thread, file, now());
        if self.file.is_none() {
            self.size = std::fs::metadata(self.path()).map(|m| m.len()).unwrap_or(0);
        }
        if self.size > 0 && self.size + line.len() as u64 > self.max_size {
            self.roll();
        }
        if self.file.is_none() {
            self.file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.path())
                .ok();
        }
        if let Some(f) = &mut self.file {
            // The log must never stop the run.
            if f.write_all(line.as_bytes()).is_ok() {
                self.size += line.len() as u64;
            }
        }
    }

    fn tsm(&mut self, m: &str, kind: u8, file: &str) {
        self.write(m, "TSManager", kind, file)
    }
}

impl EventSink for LogSink {
    fn event(&mut self, e: &Event) {
        match e {
            Event::Start {
                package_id,
                name,
                resumed,
                instructions,
                ..
            } => {
                self.tsm("==============================[ TSManager.exe ]==============================", 1, "tsmanager.cpp:1");
                self.tsm(
                    &format!(
                        "{} task sequence {package_id} ({name}), {instructions} instructions",
                        if *resumed { "Resuming" } else { "Start executing" }
                    ),
                    1,
                    "engine.cxx:1",
                );
            }
            Event::GroupStart { name, .. } => {
                self.tsm(&format!("The group ({name}) has been successfully started"), 1, "instruction.cxx:1")
            }
            Event::GroupSkipped { name, reason, .. } => {
                let m = if reason == "disabled" {
                    format!("Skip a disabled group ({name})")
                } else {
                    format!("The condition for the group ({name}) is evaluated to be false")
                };
                self.tsm(&m, 1, "engine.cxx:1")
            }
            Event::StepStart {
                pointer,
                name,
                step_type,
                ..
            } => self.tsm(
                &format!("Start executing an instruction. Instruction name: '{name}'. Pointer: {pointer}. Type: '{step_type}'. Disabled: 0"),
                1,
                "engine.cxx:1",
            ),
            Event::StepSkipped { name, reason, .. } => {
                let m = if reason == "disabled" {
                    format!("Skip a disabled action ({name})")
                } else {
                    format!("The condition for the action ({name}) is evaluated to be false, skipping")
                };
                self.tsm(&m, 1, "engine.cxx:1")
            }
            Event::StepSucceeded { name, exit_code, .. } => self.tsm(
                &format!("Successfully completed the action ({name}) with the exit win32 code {exit_code}"),
                1,
                "instruction.cxx:1",
            ),
            Event::StepFailed {
                name,
                exit_code,
                error,
                continue_on_error,
                ..
            } => {
                self.tsm(
                    &format!("Failed to run the action: {name}. {error} (Error: {:08X}; Source: Windows)", *exit_code as u32),
                    3,
                    "instruction.cxx:1",
                );
                if *continue_on_error {
                    self.tsm(&format!("The action ({name}) failed; continue on error is set, so the execution continues"), 2, "engine.cxx:1");
                }
            }
            Event::GroupFailed { name } => {
                self.tsm(&format!("The execution of the group ({name}) has failed and the execution has been aborted. An action failed."), 3, "instruction.cxx:1");
                self.tsm(&format!("Let the parent group ({name}) decide whether to continue execution"), 1, "instruction.cxx:1");
            }
            Event::GroupIgnoredFailure { name } => self.tsm(
                &format!("The group ({name}) ignored the failure of an action (continue on error) and the execution continues after it"),
                2,
                "instruction.cxx:1",
            ),
            Event::RebootRequested { name, target } => {
                self.tsm(&format!("The action ({name}) initiated a reboot request (target {target})"), 1, "engine.cxx:1");
                self.tsm("Execution engine result code: Reboot (2)", 1, "engine.cxx:1");
            }
            Event::Output { name, text } => {
                self.write(&format!("Command line output of ({name}): {text}"), "RunCommandLine", 1, "runcommandline.cpp:1")
            }
            Event::Message { level, text } => {
                let k = match level {
                    Level::Info => 1,
                    Level::Warning => 2,
                    Level::Error => 3,
                };
                self.tsm(text, k, "engine.cxx:1")
            }
            Event::Finished { result, .. } => match result.as_str() {
                "success" => self.tsm("Task sequence completed 0x00000000", 1, "tsmanager.cpp:1"),
                "restart" => self.tsm("Task Sequence Manager returned code 0x80070BC2", 1, "tsmanager.cpp:1"),
                _ => {
                    self.tsm("Task Sequence Engine failed! Code: enExecutionFail", 3, "engine.cxx:1");
                    self.tsm("Task sequence execution failed with error code 80004005", 3, "tsmanager.cpp:1");
                }
            },
        }
    }
}

/// A parsed CMTrace record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub message: String,
    pub time: String,
    pub date: String,
    pub component: String,
    pub context: String,
    pub kind: u8,
    pub thread: String,
    pub file: String,
}

/// Parses a whole log. Each record, or an error naming the byte offset of a
/// malformed one (the parser then goes on at the next record).
pub fn parse(text: &str) -> Vec<Result<Record, String>> {
    const OPEN: &str = "<![LOG[";
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(rel) = text.get(pos..).and_then(|t| t.find(OPEN)) {
        let start = pos + rel;
        let body = start + OPEN.len();
        let next_open = text
            .get(body..)
            .and_then(|t| t.find(OPEN))
            .map(|i| body + i)
            .unwrap_or(text.len());
        let rec = text.get(start..next_open).unwrap_or("");
        out.push(parse_record(rec).map_err(|e| format!("record at byte {start}: {e}")));
        pos = next_open;
    }
    out
}

fn parse_record(rec: &str) -> Result<Record, String> {
    let inner = rec.strip_prefix("<![LOG[").ok_or("no <![LOG[")?;
    let close = inner.find("]LOG]!><").ok_or("no ]LOG]!><")?;
    let message = inner.get(..close).unwrap_or("").to_string();
    let mut attrs = inner.get(close + 8..).unwrap_or("");
    let mut map = std::collections::BTreeMap::new();
    loop {
        attrs = attrs.trim_start();
        if let Some(rest) = attrs.strip_prefix('>') {
            if !rest.trim().is_empty() {
                return Err("text after the record".into());
            }
            break;
        }
        let eq = attrs.find("=\"").ok_or("attribute without =\"")?;
        let key = attrs.get(..eq).unwrap_or("").trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(format!("bad attribute name {key:?}"));
        }
        let val_start = eq + 2;
        let end = attrs
            .get(val_start..)
            .and_then(|t| t.find('"'))
            .ok_or("unterminated attribute")?;
        map.insert(
            key.to_string(),
            attrs
                .get(val_start..val_start + end)
                .unwrap_or("")
                .to_string(),
        );
        attrs = attrs.get(val_start + end + 1..).unwrap_or("");
    }
    let mut take = |k: &str| map.remove(k).ok_or(format!("missing {k}"));
    let time = take("time")?;
    let date = take("date")?;
    check_time(&time)?;
    check_date(&date)?;
    let kind = take("type")?
        .parse::<u8>()
        .map_err(|_| "type is not a number".to_string())?;
    Ok(Record {
        message,
        time,
        date,
        component: take("component")?,
        context: take("context")?,
        kind,
        thread: take("thread")?,
        file: take("file")?,
    })
}

fn check_time(t: &str) -> Result<(), String> {
    // HH:MM:SS.mmm followed by a signed bias in minutes.
    let b = t.as_bytes();
    let ok = b.len() >= 10
        && b.get(2) == Some(&b':')
        && b.get(5) == Some(&b':')
        && b.get(8) == Some(&b'.')
        && t.find(['+', '-']).is_some_and(|i| {
            t.get(i + 1..)
                .is_some_and(|bias| !bias.is_empty() && bias.bytes().all(|c| c.is_ascii_digit()))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("bad time {t:?}"))
    }
}

fn check_date(d: &str) -> Result<(), String> {
    let p: Vec<&str> = d.split('-').collect();
    let ok = p.len() == 3
        && p.iter()
            .all(|x| !x.is_empty() && x.bytes().all(|c| c.is_ascii_digit()))
        && p.first().is_some_and(|m| m.len() <= 2)
        && p.get(2).is_some_and(|y| y.len() == 4);
    if ok {
        Ok(())
    } else {
        Err(format!("bad date {d:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil(1_790_000_000), (2026, 9, 21, 14, 13, 20));
    }

    #[test]
    fn written_records_parse_back() {
        let l = format_record(
            "a ]LOG]!> b\nline2",
            "TSManager",
            3,
            42,
            "engine.cxx:1",
            (1_790_000_000, 7),
        );
        assert!(l.contains("time=\"14:13:20.007+000\" date=\"09-21-2026\""));
        let r = parse(&l);
        assert_eq!(r.len(), 1);
        let r = r[0].clone().unwrap();
        assert_eq!(r.message, "a ]LOG]!) b\nline2");
        assert_eq!(r.kind, 3);
        assert_eq!(r.component, "TSManager");
    }

    #[test]
    fn rolls_at_size() {
        let d = tempfile::tempdir().unwrap();
        let mut s = LogSink::new(d.path(), 2048);
        for i in 0..100 {
            s.write(&format!("line {i}"), "TSManager", 1, "x:1");
        }
        let files: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert!(files.len() > 2, "rolled into several files");
        for f in files {
            let p = f.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 2048, "{} is {len}", p.display());
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(parse(&text).iter().all(|r| r.is_ok()));
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "(<!\\[LOG\\[|\\]LOG\\]!><|time=\"|\"|>|[a-z0-9 :.+-]){0,40}") {
            let _ = parse(&s);
        }
        #[test]
        fn any_message_round_trips(m in "[^\\]]{0,60}", k in 0u8..4) {
            let l = format_record(&m, "C", k, 1, "f:1", (1_000_000_000, 1));
            let r = parse(&l);
            prop_assert_eq!(r.len(), 1);
            let rec = r[0].clone().unwrap();
            prop_assert_eq!(rec.message, m);
            prop_assert_eq!(rec.kind, k);
        }
    }
}
