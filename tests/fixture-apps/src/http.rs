//! A minimal HTTP/1.1 server and client over `std::net`: one request per
//! connection, bodies sized by `Content-Length`, a thread per connection.
//! Parsing is split from I/O so that it can be tested on byte strings.

use std::fmt::{self, Write as _};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Largest request or response head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// Largest body accepted.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a peer may take to send its request or read our answer.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target without its query string.
    pub path: String,
    /// Header names as sent; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (names compare case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why bytes are not (yet) a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes are needed.
    Incomplete,
    /// The head or body is larger than this server accepts.
    TooLarge,
    /// Not HTTP/1.x as we speak it.
    Malformed(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Incomplete => f.write_str("the message ended early"),
            Self::TooLarge => f.write_str("the message is too large"),
            Self::Malformed(why) => write!(f, "malformed message: {why}"),
        }
    }
}

impl std::error::Error for ParseError {}

/// A message head: its first line, its headers and where its body starts.
struct Head {
    first_line: String,
    headers: Vec<(String, String)>,
    len: usize,
}

fn parse_head(buf: &[u8]) -> Result<Head, ParseError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(if buf.len() > MAX_HEAD {
            ParseError::TooLarge
        } else {
            ParseError::Incomplete
        });
    };
    if end > MAX_HEAD {
        return Err(ParseError::TooLarge);
    }
    let text = std::str::from_utf8(&buf[..end])
        .map_err(|_| ParseError::Malformed("the head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let first_line = lines.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(ParseError::Malformed("a header line has no `:`"))?;
        if name.is_empty() || name.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(ParseError::Malformed(
                "a header name is empty or has spaces",
            ));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(Head {
        first_line,
        headers,
        len: end + 4,
    })
}

/// The body after `head`, complete according to `Content-Length` (absent
/// means empty).
fn body(buf: &[u8], head: &Head) -> Result<Vec<u8>, ParseError> {
    let len = match header(&head.headers, "content-length") {
        None => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ParseError::Malformed("Content-Length is not a number"))?,
    };
    if len > MAX_BODY {
        return Err(ParseError::TooLarge);
    }
    if header(&head.headers, "transfer-encoding").is_some() {
        return Err(ParseError::Malformed("Transfer-Encoding is not supported"));
    }
    let rest = &buf[head.len..];
    if rest.len() < len {
        return Err(ParseError::Incomplete);
    }
    Ok(rest[..len].to_vec())
}

/// Parses one complete request from the start of `buf`.
pub fn parse_request(buf: &[u8]) -> Result<Request, ParseError> {
    let head = parse_head(buf)?;
    let mut parts = head.first_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ParseError::Malformed(
            "the request line is not `METHOD TARGET VERSION`",
        ));
    };
    if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(ParseError::Malformed("the method is not an uppercase word"));
    }
    if !target.starts_with('/') {
        return Err(ParseError::Malformed("the target does not start with `/`"));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(ParseError::Malformed(
            "only HTTP/1.0 and HTTP/1.1 are spoken",
        ));
    }
    let path = target.split('?').next().unwrap_or(target).to_owned();
    let body = body(buf, &head)?;
    Ok(Request {
        method: method.to_owned(),
        path,
        headers: head.headers,
        body,
    })
}

/// Reads from `stream` until a whole request has arrived.
pub fn read_request(stream: &mut impl Read) -> Result<Request, ReadError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match parse_request(&buf) {
            Err(ParseError::Incomplete) => {}
            other => return other.map_err(ReadError::Parse),
        }
        let n = stream.read(&mut chunk).map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Parse(ParseError::Incomplete));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    Parse(ParseError),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Parse(e) => write!(f, "{e}"),
        }
    }
}

/// An answer to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "text/plain; charset=utf-8", body.into())
    }

    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "application/json", body.into())
    }

    pub fn html(status: u16, body: impl Into<String>) -> Self {
        Self::with_type(status, "text/html; charset=utf-8", body.into())
    }

    fn with_type(status: u16, content_type: &'static str, body: String) -> Self {
        Self {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    #[must_use]
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (n, v) in &self.headers {
            let _ = write!(out, "{n}: {v}\r\n");
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Answers every connection on `listener` with `handler`, each on its own
/// thread. Returns only if accepting fails.
pub fn serve<H>(listener: &TcpListener, handler: H) -> io::Error
where
    H: Fn(&Request) -> Response + Send + Sync + 'static,
{
    let handler = Arc::new(handler);
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return e,
        };
        let handler = Arc::clone(&handler);
        std::thread::spawn(move || answer(stream, &*handler));
    }
}

fn answer(mut stream: TcpStream, handler: &(dyn Fn(&Request) -> Response + Send + Sync)) {
    // A peer that hangs must not keep a thread forever.
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let response = match read_request(&mut stream) {
        Ok(req) => handler(&req),
        Err(ReadError::Parse(ParseError::TooLarge)) => Response::text(413, "too large\n"),
        Err(ReadError::Parse(e)) => Response::text(400, format!("{e}\n")),
        Err(ReadError::Io(_)) => return,
    };
    let _ = stream.write_all(&response.to_bytes());
    let _ = stream.flush();
}

/// A response as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientResponse {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Parses a complete response (the server closed the connection after it).
pub fn parse_response(buf: &[u8]) -> Result<ClientResponse, ParseError> {
    let head = parse_head(buf)?;
    let mut parts = head.first_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ParseError::Malformed("the status line is not HTTP/1.x"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (100..=599).contains(s))
        .ok_or(ParseError::Malformed("the status is not a number"))?;
    // Without Content-Length the body runs to the end of the connection.
    let body = if header(&head.headers, "content-length").is_some() {
        body(buf, &head)?
    } else {
        buf[head.len..].to_vec()
    };
    Ok(ClientResponse { status, body })
}

/// Sends one request to `addr` (`host:port`) and reads the whole answer.
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> io::Result<ClientResponse> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("`{addr}` has no address"));
    let mut stream = None;
    for sa in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&sa, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = e,
        }
    }
    let mut stream = stream.ok_or(last)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        let _ = write!(head, "{n}: {v}\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut buf = Vec::new();
    stream
        .take((MAX_HEAD + MAX_BODY) as u64)
        .read_to_end(&mut buf)?;
    parse_response(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The `health` subcommand of every fixture app: succeeds iff
/// `GET http://127.0.0.1:PORT/health` answers 200.
pub fn health_check(program: &str, port: u16) -> ExitCode {
    let addr = format!("127.0.0.1:{port}");
    match request(&addr, "GET", "/health", &[], b"", Duration::from_secs(3)) {
        Ok(r) if r.status == 200 => ExitCode::SUCCESS,
        Ok(r) => {
            eprintln!(
                "{program} health: {addr} answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body).trim()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{program} health: {addr}: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_get() {
        let r =
            parse_request(b"GET /health?x=1 HTTP/1.1\r\nHost: a\r\nX-Thing:  v \r\n\r\n").unwrap();
        assert_eq!(r.method, "GET");
        assert_eq!(r.path, "/health");
        assert_eq!(r.header("host"), Some("a"));
        assert_eq!(r.header("x-THING"), Some("v"));
        assert!(r.body.is_empty());
    }

    #[test]
    fn parses_a_post_with_body_and_ignores_what_follows() {
        let r =
            parse_request(b"POST /rpc HTTP/1.1\r\ncontent-length: 4\r\n\r\n{\"a\"}extra").unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, b"{\"a\"");
    }

    #[test]
    fn incomplete_requests_ask_for_more() {
        assert_eq!(
            parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n"),
            Err(ParseError::Incomplete)
        );
        assert_eq!(
            parse_request(b"POST /rpc HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"),
            Err(ParseError::Incomplete)
        );
    }

    #[test]
    fn malformed_and_oversized_requests_are_refused() {
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/1.1 extra\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET health HTTP/1.1\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: ten\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ] {
            assert!(
                matches!(parse_request(bad), Err(ParseError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let huge = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert_eq!(parse_request(huge.as_bytes()), Err(ParseError::TooLarge));
        let long_head = vec![b'a'; MAX_HEAD + 1];
        assert_eq!(parse_request(&long_head), Err(ParseError::TooLarge));
    }

    #[test]
    fn reads_a_request_arriving_in_pieces() {
        struct Trickle(Vec<u8>);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0.is_empty() || buf.is_empty() {
                    return Ok(0);
                }
                buf[0] = self.0.remove(0);
                Ok(1)
            }
        }
        let mut t = Trickle(b"POST /rpc HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi".to_vec());
        assert_eq!(read_request(&mut t).unwrap().body, b"hi");
        let mut cut = Trickle(b"GET / HTTP/1.1\r\n".to_vec());
        assert!(matches!(
            read_request(&mut cut),
            Err(ReadError::Parse(ParseError::Incomplete))
        ));
    }

    #[test]
    fn responses_round_trip() {
        let r = Response::json(401, "{}").header("WWW-Authenticate", "Basic realm=\"x\"");
        let bytes = r.to_bytes();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
        assert!(text.contains("WWW-Authenticate: Basic realm=\"x\"\r\n"));
        let back = parse_response(&bytes).unwrap();
        assert_eq!((back.status, back.body.as_slice()), (401, &b"{}"[..]));
    }

    #[test]
    fn response_without_length_runs_to_the_end() {
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nall of it").unwrap();
        assert_eq!(r.body, b"all of it");
        assert!(parse_response(b"HTTP/1.1 abc OK\r\n\r\n").is_err());
        assert!(parse_response(b"SPDY 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn serves_and_requests_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            serve(&listener, |req| {
                Response::text(
                    200,
                    format!("{} {} {}", req.method, req.path, req.body.len()),
                )
            })
        });
        let r = request(
            &addr,
            "POST",
            "/x",
            &[("A", "b")],
            b"12345",
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"POST /x 5");
    }
}
