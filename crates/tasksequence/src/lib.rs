//! Task sequences as data.
//!
//! A ConfigMgr-style task sequence is an ordered tree of groups and steps with
//! conditions and variables. This crate reads and writes it (ConfigMgr XML, the
//! console's export zip, MDT `ts.xml`), gives typed access to the steps of the
//! build-and-capture mission, evaluates conditions through a trait the engine
//! implements, builds sequences from the wizard's templates and answers, edits
//! them and checks them. It does no I/O beyond parsing what it is handed.
//!
//! ```
//! let xml = r#"<sequence version="3.10"><step type="SMS_TaskSequence_RebootAction" name="Restart"/></sequence>"#;
//! let seq = tasq_tasksequence::import_str(xml).unwrap();
//! assert_eq!(seq.walk_steps()[0].1.name, "Restart");
//! assert_eq!(tasq_tasksequence::export(&seq, Default::default()), xml);
//! ```

pub mod condition;
pub mod configmgr;
pub mod editor;
pub mod error;
pub mod eval;
pub mod model;
pub mod package;
pub mod secrets;
pub mod show;
pub mod steps;
pub mod templates;
pub mod validate;
pub mod variables;
pub mod wiminfo;
pub mod wizard;
pub mod wql;
pub mod xml;

pub use configmgr::{export, import_bytes, import_str, ExportOptions};
pub use error::{Error, Pos};
pub use model::{Group, Item, Reference, RunIn, Sequence, Spelled, Step, Variable};
