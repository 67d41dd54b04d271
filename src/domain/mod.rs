//! The domain: assets, their fields, source paths and the search query model.
//! Pure logic, no I/O; nothing here knows the EnterMediaDB wire envelope.

pub mod asset;
pub mod dates;
pub mod fields;
pub mod filetypes;
pub mod query;
pub mod query_eval;
pub mod sourcepath;

/// A domain rule was broken by the caller's input. The message names what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Invalid(msg.into())
    }
}
