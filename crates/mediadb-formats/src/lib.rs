//! The parsers of MediaDB that read untrusted bytes, in a crate of their own so that
//! they can be fuzzed (`fuzz/`) without building the server: the lenient JSON reader
//! of request bodies ([`lenient_json`]), the search language ([`query`], with the
//! [`fields`] catalog and [`dates`] it needs), the multipart form reading of uploads
//! ([`multipart`]) and the metadata readers of media files ([`media`]: format sniffing,
//! EXIF, IPTC, XMP and container probing).
//!
//! Pure code: no server, store or HTTP types. The `mediadb` crate re-exports these
//! modules at their old paths (`mediadb::api::lenient_json`, `mediadb::domain::query`,
//! `mediadb::media::probe`, ...). Invariant: any input yields a value or an error,
//! never a panic or an unbounded allocation.

pub mod dates;
pub mod fields;
pub mod lenient_json;
pub mod media;
pub mod multipart;
pub mod query;

/// A domain rule was broken by the caller's input. The message names what and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(msg: impl Into<String>) -> Self {
        Invalid(msg.into())
    }
}
