//! A small RADIUS client: sends PAP Access-Requests and Status-Server, and
//! verifies every reply (Response Authenticator, Message-Authenticator first).
//! Used by the integration tests, the load generator and `radotpctl`'s probes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

use super::packet::{self, ReplyError, VerifiedReply};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    #[error("bad reply: {0}")]
    BadReply(#[from] ReplyError),
    #[error("cannot build the request: {0}")]
    Build(String),
}

pub struct RadiusClient {
    socket: UdpSocket,
    server: SocketAddr,
    secret: Vec<u8>,
    next_id: u8,
    pub timeout: Duration,
}

impl RadiusClient {
    pub async fn connect(server: SocketAddr, secret: &[u8]) -> Result<Self, ClientError> {
        let any: std::net::IpAddr =
            if server.is_ipv6() { "::" } else { "0.0.0.0" }.parse().map_err(|_| ClientError::Build("bind".into()))?;
        Self::connect_from(any, server, secret).await
    }

    /// Like [`RadiusClient::connect`], sending from a chosen local address.
    pub async fn connect_from(local: std::net::IpAddr, server: SocketAddr, secret: &[u8]) -> Result<Self, ClientError> {
        let socket = UdpSocket::bind(SocketAddr::new(local, 0)).await?;
        socket.connect(server).await?;
        Ok(RadiusClient { socket, server, secret: secret.to_vec(), next_id: 0, timeout: Duration::from_secs(2) })
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    fn identifier(&mut self) -> u8 {
        self.next_id = self.next_id.wrapping_add(1);
        self.next_id
    }

    /// Sends a PAP Access-Request and waits for its verified reply.
    pub async fn authenticate(&mut self, user: &str, password: &str) -> Result<VerifiedReply, ClientError> {
        let id = self.identifier();
        let request = packet::build_access_request(id, &self.secret, user, password.as_bytes(), None)
            .map_err(ClientError::Build)?;
        self.exchange(&request).await
    }

    /// Answers the Access-Challenge `state` with `password`.
    pub async fn respond(&mut self, user: &str, password: &str, state: &[u8]) -> Result<VerifiedReply, ClientError> {
        let id = self.identifier();
        let request = packet::build_access_request(id, &self.secret, user, password.as_bytes(), Some(state))
            .map_err(ClientError::Build)?;
        self.exchange(&request).await
    }

    pub async fn status_server(&mut self) -> Result<VerifiedReply, ClientError> {
        let id = self.identifier();
        let request = packet::build_status_server(id, &self.secret);
        self.exchange(&request).await
    }

    /// Sends raw bytes and waits for a reply verified against them.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<VerifiedReply, ClientError> {
        self.socket.send(request).await?;
        self.receive_for(request).await
    }

    /// Sends raw bytes without waiting.
    pub async fn send_raw(&self, bytes: &[u8]) -> Result<(), ClientError> {
        self.socket.send(bytes).await?;
        Ok(())
    }

    /// Waits for the reply to `request` (skipping stale replies to other ids).
    pub async fn receive_for(&self, request: &[u8]) -> Result<VerifiedReply, ClientError> {
        let mut buf = vec![0u8; 4096];
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let len = match tokio::time::timeout_at(deadline, self.socket.recv(&mut buf)).await {
                Ok(result) => result?,
                Err(_) => return Err(ClientError::Timeout(self.timeout)),
            };
            match packet::verify_reply(&buf[..len], request, &self.secret) {
                Err(ReplyError::Identifier) => continue,
                other => return Ok(other?),
            }
        }
    }

    /// Waits for any datagram at all within `wait`; true if one came.
    pub async fn anything_within(&self, wait: Duration) -> bool {
        let mut buf = vec![0u8; 4096];
        matches!(tokio::time::timeout(wait, self.socket.recv(&mut buf)).await, Ok(Ok(_)))
    }
}
