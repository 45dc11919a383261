//! Just enough HTTP/1.1 for a local control socket: one request per
//! connection, bodies sized by Content-Length, bounded in size.

use std::io::{self, Read, Write};

/// Requests larger than this are refused; the API takes small JSON.
pub const MAX_REQUEST: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("request larger than {MAX_REQUEST} bytes")]
    TooLarge,
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("connection closed before the request was complete")]
    Truncated,
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Parses a complete request from `buf`, or returns None if more is needed.
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let header_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HttpError::Malformed(e.to_string())),
    };
    let content_length = match req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
    {
        Some(h) => std::str::from_utf8(h.value)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .ok_or_else(|| HttpError::Malformed("bad Content-Length".into()))?,
        None => 0,
    };
    if content_length > MAX_REQUEST {
        return Err(HttpError::TooLarge);
    }
    let Some(body) = buf.get(header_len..header_len + content_length) else {
        return Ok(None);
    };
    Ok(Some(Request {
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        body: body.to_vec(),
    }))
}

/// Reads one request from `stream`.
pub fn read_request(stream: &mut impl Read) -> Result<Request, HttpError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(HttpError::Truncated);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST + 8192 {
            return Err(HttpError::TooLarge);
        }
        if let Some(req) = parse_request(&buf)? {
            return Ok(req);
        }
    }
}

/// Writes a response with an optional JSON body and closes the exchange.
pub fn write_response(out: &mut impl Write, status: u16, body: Option<&str>) -> io::Result<()> {
    let reason = match status {
        200 => "OK",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        _ => "Internal Server Error",
    };
    let body = body.unwrap_or("");
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests_with_and_without_bodies() {
        let req = parse_request(b"GET /api/v1/vm.info HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (req.method.as_str(), req.path.as_str()),
            ("GET", "/api/v1/vm.info")
        );
        let raw = b"PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_request(raw).unwrap().unwrap().body, b"{}");
        assert!(parse_request(&raw[..raw.len() - 1]).unwrap().is_none());
    }

    #[test]
    fn rejects_garbage_and_huge_bodies() {
        assert!(parse_request(b"\x00\x01\x02 nonsense\r\n\r\n").is_err());
        let huge = format!(
            "PUT / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_REQUEST + 1
        );
        assert!(matches!(
            parse_request(huge.as_bytes()),
            Err(HttpError::TooLarge)
        ));
        assert!(parse_request(b"PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n").is_err());
    }
}
