//! The client side of the admin socket, used by `radotpctl` and the tests.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::wire::{Command, MAX_RESPONSE_BYTES, PROTOCOL_VERSION, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("cannot reach radotpd at {path}: {reason}")]
    Unreachable { path: PathBuf, reason: String },
    #[error("connection to radotpd failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("radotpd sent an unreadable response: {0}")]
    Protocol(String),
}

pub struct AdminClient {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl AdminClient {
    pub async fn connect(path: &Path) -> Result<Self, AdminClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|e| AdminClientError::Unreachable { path: path.to_path_buf(), reason: e.to_string() })?;
        let (read_half, writer) = stream.into_split();
        Ok(AdminClient { reader: BufReader::new(read_half), writer })
    }

    pub async fn call(&mut self, command: Command) -> Result<Response, AdminClientError> {
        let request = Request { version: PROTOCOL_VERSION, command };
        // The request may carry an import file (seeds in clear) or its key: wipe it once sent.
        let mut bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(&request).map_err(|e| AdminClientError::Protocol(e.to_string()))?,
        );
        bytes.push(b'\n');
        // A refused peer gets its answer without reading the request: a failed
        // write still leaves that answer to read.
        let written = self.writer.write_all(&bytes).await;
        let mut line = Vec::new();
        (&mut self.reader).take(MAX_RESPONSE_BYTES as u64).read_until(b'\n', &mut line).await?;
        if line.is_empty() {
            written?;
            return Err(AdminClientError::Protocol("connection closed without a response".into()));
        }
        serde_json::from_slice(&line).map_err(|e| AdminClientError::Protocol(e.to_string()))
    }
}
