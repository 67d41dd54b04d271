//! The domain: assets, their fields, source paths and the search query model.
//! Pure logic, no I/O; nothing here knows the EnterMediaDB wire envelope.

pub mod asset;
pub mod filetypes;
pub mod query_eval;
pub mod sourcepath;

// The parsers of untrusted input and what they need live in crates/mediadb-formats (fuzzed
// without building the server); their old paths stay.
pub use mediadb_formats::{dates, fields, query, Invalid};
