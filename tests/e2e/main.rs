//! End-to-end tests against the real `radotpd` binary.

mod admin;
mod harness;
mod radius;
mod store;
