//! The metadata side of the media library: what a file is ([`sniff`]) and its technical
//! facts and EXIF, IPTC and XMP ([`probe`]), and the composite image of a Photoshop file
//! ([`psd`]). Rendering and external tools stay in the
//! `mediadb` crate (`mediadb::media`), which re-exports these.

mod error;
pub mod probe;
pub mod psd;
pub mod sniff;

pub use error::MediaError;
pub use probe::{probe, MediaInfo};
pub use sniff::Format;
