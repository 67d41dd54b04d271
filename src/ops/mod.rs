//! Use cases over the store and the blobs: what a request asks for, free of HTTP and
//! of the EnterMediaDB envelope.

pub mod assets;
pub mod audit;
pub mod categories;
pub mod clone;
pub mod customfields;
pub mod folder_import;
pub mod fsck;
pub mod import;
pub mod ingest;
pub mod jobs;
pub mod recovery;
pub mod remote;
pub mod tables;
pub mod trash;
pub mod users;
pub mod versions;

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

/// Who acts, from where, on which catalog, with which services.
pub struct Ctx<'a> {
    pub store: &'a dyn MetaStore,
    pub blobs: &'a BlobStore,
    pub catalog: &'a str,
    pub user: &'a str,
    /// The client's address, for the audit log.
    pub address: &'a str,
}

impl<'a> Ctx<'a> {
    /// An audit entry for an action of this caller.
    pub fn audit(&self, action: &'a str, assetid: Option<&'a str>) -> audit::Entry<'a> {
        audit::Entry {
            catalog: self.catalog,
            user: self.user,
            address: self.address,
            action,
            assetid,
            fields: Vec::new(),
            details: serde_json::Value::Null,
        }
    }
}
