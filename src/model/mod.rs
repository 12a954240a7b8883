//! The model: radotp's types and rules, with no I/O.
//!
//! What a token is and how its state moves ([`token`]), the OTP arithmetic
//! ([`otp`]), what a decision is ([`decision`]), where a RADIUS request came from
//! ([`nas`]), the policies the domain
//! applies ([`policy`]) and the audit chain's entries and hashing
//! ([`audit`]). Nothing here knows a socket, a file, a store engine or the
//! configuration file's layout.

pub mod audit;
pub mod decision;
pub mod nas;
pub mod otp;
pub mod reply;
pub mod token;
