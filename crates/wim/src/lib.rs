//! The WIM container.
pub mod capture_config;
pub mod xml;
