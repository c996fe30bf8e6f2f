//! The WIM container.
