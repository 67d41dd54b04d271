//! Use cases over the store and the blobs: what a request asks for, free of HTTP and
//! of the EnterMediaDB envelope.

pub mod assets;
pub mod ingest;

use crate::blobs::{BlobError, BlobStore};
use crate::domain::Invalid;
use crate::store::{MetaStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Blob(#[from] BlobError),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => OpsError::Conflict(m),
            other => OpsError::Store(other),
        }
    }
}

pub type OpsResult<T> = Result<T, OpsError>;

/// Who acts, on which catalog, with which services.
pub struct Ctx<'a> {
    pub store: &'a dyn MetaStore,
    pub blobs: &'a BlobStore,
    pub catalog: &'a str,
    pub user: &'a str,
}
