//! Task sequences as data.
