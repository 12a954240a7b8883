//! The admin socket: [`wire`] (the protocol, shared by daemon and CLI),
//! [`server`] (the daemon side, with the peer check), [`client`] (the CLI side).

pub mod client;
pub mod server;
pub mod wire;
