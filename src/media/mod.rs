//! The media library: metadata probing ([`probe`], widened by [`exiftool`] when installed),
//! renditions ([`render`]), optional external tools ([`tools`]) and the `mediadb convert`
//! command ([`convert`]). Self-contained: it knows
//! files and pixels, not assets, jobs, stores or HTTP.
//!
//! Invariants: no pixel buffer is allocated before the header's size has passed the pixel limit;
//! hostile input yields a [`MediaError`], never a panic or an unbounded read; external programs
//! run with fixed arguments and a timeout.

pub mod convert;
mod decode;
pub mod exiftool;
pub mod render;
pub mod tools;

pub use convert::convert_cli;
// Sniffing, probing and the error type live in crates/mediadb-formats (fuzzed without
// building the server); their old paths stay.
pub use mediadb_formats::media::{probe, sniff, Format, MediaError, MediaInfo};
pub use render::{
    render_presets, standard_presets, OutputFormat, Preset, RenderOptions, RenderOutput, Rendition, Rotation,
};
