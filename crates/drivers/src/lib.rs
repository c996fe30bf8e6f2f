//! Windows driver packages for the task sequence engine.
//!
//! - [`text`] turns INF bytes (UTF-16 with BOM, UTF-8 with BOM, ANSI) into text.
//! - [`inf`] is the INF syntax: sections, keys, values, quoting, comments,
//!   line continuation and `%strkey%` substitution, tolerant of real files.
//! - [`driver`] reads what driver matching needs out of a parsed INF:
//!   `[Version]`, `[Manufacturer]` with its TargetOSVersion decorations and
//!   the Models sections with each device's hardware and compatible IDs.
//! - [`pnp`] derives the hardware and compatible IDs Windows builds for a
//!   device from its PnP ID.
//! - [`catalog`] indexes driver packages and ranks candidate drivers for a
//!   device the way Windows does.

pub mod catalog;
pub mod driver;
pub mod inf;
pub mod pnp;
pub mod text;

pub use catalog::{Candidate, Catalog, MatchKind, SelectOptions, Selection, Target};
pub use driver::{Arch, Decoration, DriverInf, OsVersion};
pub use inf::{Inf, InfError, Warning};
