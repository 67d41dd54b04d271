//! One integration-test binary: black-box tests against a real server on port 0.

mod auth;
mod binary;
mod browser;
mod categories;
mod collections;
mod crash;
mod datamanager;
mod exports;
mod fsck;
mod harness;
mod hostile;
mod imports;
mod lifecycle;
mod media;
mod media_customthumb;
mod media_tools;
mod operations;
mod records;
mod refusals;
mod scaleout;
mod search;
mod trash;
mod users;
mod versions;
mod zips;
