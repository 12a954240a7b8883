//! End-to-end tests against the real `radotpd` binary.

mod admin;
mod harness;
mod operator;
mod radius;
mod store;
