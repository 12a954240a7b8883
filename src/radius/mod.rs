//! RADIUS: the UDP front end that NAS devices talk to.
//!
//! - [`packet`]: framing, Message-Authenticator, decoding and signing (wraps the `radius` crate);
//! - [`clients`]: which source addresses are NAS clients, with their secrets;
//! - [`dedup`]: the RFC 5080 duplicate cache;
//! - [`drop_warnings`]: rate-limited warnings for dropped requests;
//! - [`signers`]: addresses of `require_message_authenticator: auto` clients that sign;
//! - [`server`]: the receive loop, mapping requests onto [`crate::domain::Service`];
//! - [`client`]: a small RADIUS client for tests, benchmarks and monitoring.

pub mod client;
pub mod clients;
pub mod dedup;
pub mod drop_warnings;
pub mod packet;
pub mod server;
pub mod signers;
