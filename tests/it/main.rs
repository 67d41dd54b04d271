//! One integration-test binary: black-box tests against a real server on port 0.

mod auth;
mod binary;
mod harness;
mod lifecycle;
mod refusals;
mod trash;
mod users;
