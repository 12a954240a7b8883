//! The admin socket: [`wire`] (the protocol, shared by daemon and CLI),
//! [`server`] (the daemon side, with the peer check), [`peer`] (who is on
//! the other end), [`client`] (the CLI side).

pub mod client;
pub mod peer;
pub mod server;
pub mod wire;
