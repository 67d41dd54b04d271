//! The one error type of the media library: each variant says what an operator can do about it.

use std::path::PathBuf;

/// Everything that can go wrong while probing or converting a file.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The file is not in a format this library reads (or the format needs a tool that is absent).
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// A decompression-bomb guard: the header announces more pixels than allowed.
    #[error(
        "image too large: {width}x{height} pixels is more than the limit of {limit} pixels \
         (raise the pixel limit to convert it)"
    )]
    TooManyPixels { width: u64, height: u64, limit: u64 },
    /// The file claims a format but its content is broken.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Writing a rendition failed in the encoder.
    #[error("cannot encode {format}: {reason}")]
    Encode { format: &'static str, reason: String },
    /// An optional external program is not installed (or not on PATH).
    #[error("{tool} is not installed or not on PATH (install {package} to enable this conversion)")]
    ToolMissing { tool: &'static str, package: &'static str },
    /// An external program ran but failed or took too long.
    #[error("{tool} failed: {reason}")]
    ToolFailed { tool: &'static str, reason: String },
    /// A preset name that the preset table does not have.
    #[error("unknown preset {0:?}")]
    UnknownPreset(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MediaError {
    pub fn io(op: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        MediaError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    /// True when the input itself is at fault (bad, unsupported or too large): the caller answers
    /// 400 or marks the asset `previewstatus=mime`/`3` instead of retrying.
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            MediaError::Unsupported(_)
                | MediaError::TooManyPixels { .. }
                | MediaError::Decode(_)
                | MediaError::UnknownPreset(_)
        )
    }
}
