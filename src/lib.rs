//! MediaDB: a digital asset management server that speaks the EnterMediaDB JSON API.
//!
//! Layers, from the wire inwards (each may use only those below it):
//! - [`api`]: HTTP, the EnterMediaDB envelope and wire types, authentication of requests.
//! - [`ops`]: the use cases (create, update, delete, search assets), free of HTTP.
//! - [`store`] and [`blobs`]: metadata (SQLite) and files (object_store).
//! - [`domain`] and [`auth`]: pure rules: fields, source paths, the query model, keys.

pub mod api;
pub mod app;
pub mod auth;
pub mod bench;
pub mod bench_http;
pub mod blobs;
pub mod config;
pub mod domain;
pub mod journal;
pub mod media;
pub mod metrics;
pub mod migrate;
pub mod ops;
pub mod progress;
pub mod store;
pub mod tls;
