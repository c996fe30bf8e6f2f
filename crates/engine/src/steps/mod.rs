//! Step types. Each ConfigMgr type name maps to a `StepAction` in a
//! `Registry`; each step family lives in its own module and registers its
//! types (`general`: Run Command Line, Set Task Sequence Variable, Restart
//! Computer).
//!
//! A step reads its settings with `StepContext::param`: the value from the
//! environment when the variable is set there (that is how collection
//! variables override step settings), otherwise the step's own default;
//! `%VAR%` references are expanded.

use crate::computer::Computer;
use crate::content::ContentLibrary;
use crate::env::Environment;
use crate::events::Level;
use crate::runner::{Phase, RestartTarget};
use crate::volumes::Drives;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use tasq_tasksequence::model::Step;

pub mod apply_os;
pub mod boot;
pub mod capture;
pub mod disk;
pub mod drivers;
pub mod fullos;
pub mod general;
pub mod settings;
pub mod setup;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepError {
    pub code: i64,
    pub message: String,
}

impl StepError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        StepError {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    pub exit_code: i64,
    /// A restart after the step, and whether to run the same step again after it.
    pub restart: Option<(RestartTarget, bool)>,
}

impl StepOutcome {
    pub fn code(exit_code: i64) -> Self {
        StepOutcome {
            exit_code,
            restart: None,
        }
    }
}

pub struct StepContext<'a> {
    pub step: &'a Step,
    pub env: &'a mut Environment,
    pub timeout: Option<Duration>,
    pub content: Option<&'a dyn ContentLibrary>,
    /// Drive letters → volumes (set by disk steps; journaled).
    pub drives: &'a mut Drives,
    pub computer: &'a Computer,
    /// The run's state directory (journal, logs).
    pub state_dir: &'a Path,
    pub phase: Phase,
    /// Lines for the log: `None` level = command output.
    pub messages: &'a mut Vec<(Option<Level>, String)>,
}

impl StepContext<'_> {
    /// A setting: the environment's value unless the variable is hidden
    /// (a command-line argument, not a task sequence variable), else the step's.
    pub fn param(&self, name: &str) -> Option<String> {
        let hidden = self
            .step
            .variable(name)
            .map(|v| v.is_hidden())
            .unwrap_or(false);
        let raw = if hidden {
            self.step.var(name).map(str::to_string)
        } else {
            self.env
                .get(name)
                .map(str::to_string)
                .or_else(|| self.step.var(name).map(str::to_string))
        };
        raw.filter(|s| !s.is_empty()).map(|s| self.env.expand(&s))
    }
    pub fn log(&mut self, level: Level, text: impl Into<String>) {
        self.messages.push((Some(level), text.into()));
    }
    /// Opens the volume of `spec` (`C:` or `C:\\path`, often a variable's
    /// value such as `%OSDisk%`) and returns it with the path inside it.
    pub fn open_drive(
        &self,
        spec: &str,
        writable: bool,
    ) -> Result<(Box<dyn tasq_volume::VolumeFs>, tasq_volume::VolPath), StepError> {
        crate::volumes::open_drive(self.drives, self.computer, spec, writable)
            .map_err(|e| StepError::new(crate::runner::E_FAIL, e))
    }
}

pub trait StepAction: Send + Sync {
    fn run(&self, ctx: &mut StepContext) -> Result<StepOutcome, StepError>;
}

/// Step implementations keyed by ConfigMgr type name.
#[derive(Default)]
pub struct Registry {
    map: BTreeMap<String, Box<dyn StepAction>>,
}

impl Registry {
    pub fn empty() -> Self {
        Self::default()
    }
    /// The general steps only (Run Command Line, Set Task Sequence
    /// Variable, Restart Computer).
    pub fn general() -> Self {
        let mut r = Registry::empty();
        general::register(&mut r);
        r
    }
    /// Every step type this engine implements.
    pub fn standard() -> Self {
        let mut r = Registry::general();
        // One line per step family; each family's module registers its types.
        disk::register(&mut r);
        apply_os::register(&mut r);
        settings::register(&mut r);
        drivers::register(&mut r);
        setup::register(&mut r);
        fullos::register(&mut r);
        capture::register(&mut r);
        r
    }
    pub fn register(&mut self, type_name: &str, action: Box<dyn StepAction>) {
        self.map.insert(type_name.to_ascii_lowercase(), action);
    }
    pub fn get(&self, type_name: &str) -> Option<&dyn StepAction> {
        self.map
            .get(&type_name.to_ascii_lowercase())
            .map(|b| b.as_ref())
    }
    pub fn contains(&self, type_name: &str) -> bool {
        self.map.contains_key(&type_name.to_ascii_lowercase())
    }
}
