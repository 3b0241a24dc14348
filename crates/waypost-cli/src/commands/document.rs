//! Reading an app's OpenAPI document, for the commands that work from it (`client`, `openapi`).
//!
//! The document is read from a file, from stdin (`-`), or from a running app over plain HTTP on
//! this machine (`http://127.0.0.1:3000/api/openapi.json`, the default). Only loopback is
//! fetched, with a few lines over `std::net`: the point is "the app I am running right now",
//! and that keeps a TLS stack and an HTTP client library out of the CLI.

use std::{
    fs,
    io::{self, Read, Write},
    net::{IpAddr, TcpStream, ToSocketAddrs},
    time::Duration,
};

use serde_json::Value;

/// Where `waypost dev` and the showcase serve the document by default.
pub(crate) const DEFAULT_SPEC: &str = "http://127.0.0.1:3000/api/openapi.json";

/// How long a local app may take to connect and to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The document at `spec` (a path, `-`, or a loopback `http://` URL), parsed, and checked to be
/// an OpenAPI 3 document — so a wrong URL that answers some other JSON is named as such rather
/// than turned into an empty client. (`paths` is optional in 3.1, so it is not required.)
pub(crate) fn read(spec: &str) -> Result<Value, String> {
    let text = read_spec(spec)?;
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| format!("the document at `{spec}` is not JSON: {e}"))?;
    let version = document.get("openapi").and_then(Value::as_str);
    if !version.is_some_and(|v| v.starts_with("3.")) {
        return Err(format!(
            "the document at `{spec}` is not an OpenAPI 3 document (no `\"openapi\": \"3.x\"`)"
        ));
    }
    Ok(document)
}

fn read_spec(spec: &str) -> Result<String, String> {
    if spec == "-" {
        let mut text = String::new();
        io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read the document from stdin: {e}"))?;
        return Ok(text);
    }
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return http_get(spec);
    }
    fs::read_to_string(spec).map_err(|e| format!("cannot read `{spec}`: {e}"))
}

/// The parts of an `http://host[:port]/path` URL.
#[derive(Debug, PartialEq, Eq)]
struct Url<'a> {
    /// As written, for the `Host` header.
    authority: &'a str,
    /// Without IPv6 brackets, for connecting.
    host: &'a str,
    port: u16,
    /// Path and query, as sent in the request line.
    path: String,
}

fn parse_url(url: &str) -> Result<Url<'_>, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        format!("`{url}`: only plain http:// on this machine is fetched; save the document and pass its path")
    })?;
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // `http://host?x` asks for `/?x`.
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| format!("`{url}`: unclosed `[` in the host"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None | Some("") => 80,
        Some(port) => port
            .parse()
            .map_err(|_| format!("`{url}`: `{port}` is not a port"))?,
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "`{url}`: only URLs on this machine (127.0.0.1, ::1, localhost) are fetched; \
             download the document and pass its path"
        ));
    }
    Ok(Url {
        authority,
        host,
        port,
        path,
    })
}

/// A blocking `GET` of a loopback URL; the body of a 2xx answer, or why there is none.
fn http_get(url: &str) -> Result<String, String> {
    let parts = parse_url(url)?;
    let addresses: Vec<_> = (parts.host, parts.port)
        .to_socket_addrs()
        .map_err(|e| format!("`{url}`: cannot resolve `{}`: {e}", parts.host))?
        .collect();
    let mut last_error = None;
    let mut stream = None;
    for address in &addresses {
        match TcpStream::connect_timeout(address, TIMEOUT) {
            Ok(connected) => {
                stream = Some(connected);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let mut stream = stream.ok_or_else(|| {
        let reason = last_error.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        format!("cannot connect to `{url}` ({reason}); is the app running?")
    })?;
    let io_error = |e: io::Error| format!("`{url}`: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io_error)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io_error)?;
    // `Connection: close` makes the end of the stream the end of the answer.
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nUser-Agent: waypost-cli\r\nConnection: close\r\n\r\n",
        parts.path, parts.authority
    );
    stream.write_all(request.as_bytes()).map_err(io_error)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(io_error)?;
    let body = response_body(&answer).map_err(|e| format!("`{url}`: {e}"))?;
    String::from_utf8(body).map_err(|_| format!("`{url}`: the answer is not UTF-8"))
}

/// The body of a complete HTTP/1.1 answer when its status is 2xx.
fn response_body(answer: &[u8]) -> Result<Vec<u8>, String> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let body = &answer[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the answer is not HTTP (`{status_line}`)"))?;
    let chunked = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&body);
        let excerpt: String = text.chars().take(200).collect();
        return Err(format!("answered {status}: {excerpt}"));
    }
    Ok(body)
}

/// Undoes `Transfer-Encoding: chunked`.
fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunk size line is cut off")?;
        let size_line = String::from_utf8_lossy(&body[..line_end]);
        // Chunk extensions (`;name=value`) carry nothing we need.
        let size_text = size_line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("`{size_text}` is not a chunk size"))?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = body.get(..size).ok_or("a chunk is cut off")?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..).ok_or("a chunk is cut off")?;
    }
}

#[cfg(test)]
mod tests {
    use std::{io::BufRead, io::BufReader, net::TcpListener, thread};

    use super::*;

    #[test]
    fn urls_on_this_machine_are_accepted() {
        assert_eq!(
            parse_url("http://127.0.0.1:3520/api/openapi.json").unwrap(),
            Url {
                authority: "127.0.0.1:3520",
                host: "127.0.0.1",
                port: 3520,
                path: "/api/openapi.json".into()
            }
        );
        assert_eq!(
            parse_url("http://[::1]:8080/doc?x=1#frag").unwrap(),
            Url {
                authority: "[::1]:8080",
                host: "::1",
                port: 8080,
                path: "/doc?x=1".into()
            }
        );
        let url = parse_url("http://localhost").unwrap();
        assert_eq!(
            (url.host, url.port, url.path.as_str()),
            ("localhost", 80, "/")
        );
        assert_eq!(parse_url("http://127.0.0.2?a=b").unwrap().path, "/?a=b");
    }

    #[test]
    fn other_urls_are_refused_with_a_way_out() {
        let remote = parse_url("http://example.com/api/openapi.json").unwrap_err();
        assert!(
            remote.contains("download the document and pass its path"),
            "{remote}"
        );
        let tls = parse_url("https://127.0.0.1/api/openapi.json").unwrap_err();
        assert!(tls.contains("only plain http://"), "{tls}");
        let port = parse_url("http://127.0.0.1:http/").unwrap_err();
        assert!(port.contains("is not a port"), "{port}");
    }

    #[test]
    fn chunked_bodies_are_joined() {
        let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(response_body(answer).unwrap(), b"{\"a\":1}");
    }

    #[test]
    fn error_statuses_are_reported_with_the_body() {
        let answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here.";
        assert_eq!(
            response_body(answer).unwrap_err(),
            "answered 404: not here."
        );
    }

    #[test]
    fn a_document_is_fetched_from_a_local_server() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            // Read the whole request: closing with unread bytes would reset the connection.
            let mut reader = BufReader::new(&stream);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap() > 2 {
                line.clear();
            }
            let body = r#"{"openapi":"3.1.0"}"#;
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            request_line
        });
        let body = http_get(&format!("http://127.0.0.1:{port}/api/openapi.json")).unwrap();
        assert_eq!(body, r#"{"openapi":"3.1.0"}"#);
        assert_eq!(server.join().unwrap(), "GET /api/openapi.json HTTP/1.1\r\n");
    }
}
