//! End-to-end tests against the real `radotpd` binary.

mod admin;
mod admin_limits;
mod authorization;
mod clock;
mod crash;
mod disk_full;
mod flood;
mod freeradius;
mod harness;
mod helpdesk;
mod integrators;
mod lifecycle;
mod operator;
mod pskc;
mod radius;
mod security;
mod store;
