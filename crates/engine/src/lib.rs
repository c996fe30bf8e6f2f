//! The task sequence engine.
//!
//! It runs a `tasq_tasksequence::Sequence` on a reference computer with
//! ConfigMgr's semantics (see `runner`), journals its state after every step
//! so a run survives restarts and crashes (`journal`), writes `smsts.log` in
//! CMTrace format (`log`), and checks the content the sequence references in a
//! content library (`content`). Work on the machine goes through the `Step`
//! and `Machine` traits so later step types and drivers plug in.

pub mod computer;
pub mod content;
pub mod env;
pub mod events;
pub mod host;
pub mod journal;
pub mod log;
pub mod runner;
pub mod steps;
pub mod volumes;

pub use computer::Computer;
pub use env::Environment;
pub use runner::{Engine, EngineConfig, MediaType, Phase, RunOutcome};
