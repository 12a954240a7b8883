//! End-to-end tests against the real `radotpd` binary.

mod admin;
mod admin_limits;
mod crash;
mod flood;
mod harness;
mod lifecycle;
mod operator;
mod pskc;
mod radius;
mod security;
mod store;
