//! A client for the control API, used by `vigil ctl` and tests.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use super::API_PREFIX;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach vigil API at {path}: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: io::Error,
    },
    #[error("API I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("malformed API response")]
    Malformed,
    #[error("API answered {status}: {body}")]
    Status { status: u16, body: String },
}

/// Sends `method action` with an optional JSON body; returns the body.
pub fn call(
    socket: &Path,
    method: &str,
    action: &str,
    body: Option<&str>,
) -> Result<String, ClientError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ClientError::Connect {
        path: socket.to_owned(),
        source,
    })?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {API_PREFIX}{action} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8(response).map_err(|_| ClientError::Malformed)?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or(ClientError::Malformed)?;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ClientError::Malformed)?;
    if (200..300).contains(&status) {
        Ok(body.to_owned())
    } else {
        Err(ClientError::Status {
            status,
            body: body.to_owned(),
        })
    }
}
