//! Errors of the crate. Every error that comes from a document says where (line
//! and column of the offending element) and what was expected.

use std::fmt;

/// A 1-based line and column in the source text; 0:0 for built (not parsed) items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("malformed XML at {pos}: {message}")]
    Syntax { pos: Pos, message: String },
    #[error("invalid task sequence at {pos}: {message}")]
    Invalid { pos: Pos, message: String },
    #[error("text encoding: {0}")]
    Encoding(String),
    #[error("input of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("export package: {0}")]
    Package(String),
}

impl Error {
    pub(crate) fn invalid(pos: Pos, message: impl Into<String>) -> Self {
        Error::Invalid {
            pos,
            message: message.into(),
        }
    }

    /// Where in the document the problem is, when it came from a document.
    pub fn pos(&self) -> Option<Pos> {
        match self {
            Error::Syntax { pos, .. } | Error::Invalid { pos, .. } => Some(*pos),
            _ => None,
        }
    }
}
