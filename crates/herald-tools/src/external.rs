//! Handlers for services not written in Rust (`herald consume --exec / --http`).
//!
//! herald does the consuming (validation, duplicates, retries, DLQ) and hands each
//! valid event to a command on its standard input, or POSTs it to a URL:
//!
//! | command | HTTP | outcome |
//! |---|---|---|
//! | exit 0 | 2xx | ack |
//! | exit 75 (`EX_TEMPFAIL`), killed by a signal, timeout | 429, 5xx, timeout, connection error | retry with backoff |
//! | any other exit | other status (4xx ...) | dead-letter `handler_rejected` with stderr / body |

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use herald_runtime::consumer::{Delivery, HandlerError, HandlerResult};
use herald_runtime::headers as h;

/// Exit code meaning "temporary failure, retry" (sysexits `EX_TEMPFAIL`).
pub const EX_TEMPFAIL: i32 = 75;

/// Longest error text kept from a command's stderr or a response body.
pub const MAX_ERROR_TEXT: usize = 1000;

fn truncate(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_ERROR_TEXT {
        return s.to_string();
    }
    let mut cut = MAX_ERROR_TEXT;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

/// Where events are handed.
#[derive(Debug, Clone)]
pub enum ExternalHandler {
    /// `sh -c COMMAND` with the event on stdin.
    Exec {
        /// Shell command.
        command: String,
        /// Longest run before the command is killed and the event retried.
        timeout: Duration,
    },
    /// HTTP POST of the event (plain `http://` only).
    Http {
        /// Target URL.
        url: HttpUrl,
        /// Longest wait for the response before retrying.
        timeout: Duration,
    },
}

/// A parsed `http://host:port/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host.
    pub host: String,
    /// Port (default 80).
    pub port: u16,
    /// Path and query (default `/`).
    pub path: String,
}

impl std::str::FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let rest = s.strip_prefix("http://").ok_or_else(|| {
            format!("unsupported URL {s:?}: only http:// (put a local TLS-terminating proxy in front for https)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].to_string()),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?,
            ),
            None => (authority.to_string(), 80),
        };
        if host.is_empty() {
            return Err(format!("no host in {s:?}"));
        }
        Ok(HttpUrl { host, port, path })
    }
}

impl ExternalHandler {
    /// Hands one delivery over and maps the result to a handler outcome.
    pub async fn handle(&self, d: Delivery) -> HandlerResult {
        match self {
            ExternalHandler::Exec { command, timeout } => exec(command, *timeout, &d).await,
            ExternalHandler::Http { url, timeout } => http(url, *timeout, &d).await,
        }
    }
}

async fn exec(command: &str, timeout: Duration, d: &Delivery) -> HandlerResult {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .env("HERALD_SUBJECT", &d.subject)
        .env("HERALD_STREAM", &d.stream)
        .env("HERALD_STREAM_SEQ", d.stream_seq.to_string())
        .env("HERALD_DELIVERED", d.delivered.to_string())
        .env("HERALD_SCHEMA", &d.schema_id)
        .env(
            "HERALD_CORRELATION_ID",
            d.correlation_id.as_deref().unwrap_or(""),
        )
        .env("HERALD_MESSAGE_ID", d.key.as_deref().unwrap_or(""));
    let mut child = cmd
        .spawn()
        .map_err(|e| HandlerError::Retry(format!("cannot start command: {e}")))?;
    let mut stdin = child.stdin.take();
    let payload = d.payload.clone();
    let mut stderr = child.stderr.take();
    let run = async {
        if let Some(mut s) = stdin.take() {
            // A command that does not read its input is fine: ignore a broken pipe.
            let _ = s.write_all(&payload).await;
            let _ = s.shutdown().await;
        }
        let mut err = Vec::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_end(&mut err).await;
        }
        let status = child.wait().await;
        (status, err)
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Err(HandlerError::Retry(format!(
            "command timed out after {timeout:?}"
        ))),
        Ok((Err(e), _)) => Err(HandlerError::Retry(format!("command failed: {e}"))),
        Ok((Ok(status), err)) => {
            let err = String::from_utf8_lossy(&err);
            match status.code() {
                Some(0) => Ok(()),
                Some(EX_TEMPFAIL) => Err(HandlerError::Retry(truncate(&format!("exit 75: {err}")))),
                Some(code) => Err(HandlerError::Reject(truncate(&format!(
                    "exit {code}: {err}"
                )))),
                None => Err(HandlerError::Retry(truncate(&format!(
                    "command killed by a signal: {err}"
                )))),
            }
        }
    }
}

async fn http(url: &HttpUrl, timeout: Duration, d: &Delivery) -> HandlerResult {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nce-type: {}\r\n",
        url.path,
        url.host,
        url.port,
        d.payload.len(),
        d.subject
    );
    for name in [
        h::CE_ID,
        h::CE_SOURCE,
        h::CE_CORRELATIONID,
        h::CE_DATASCHEMA,
        h::CE_TIME,
        h::TRACEPARENT,
        h::MSG_ID,
    ] {
        if let Some(v) = d.header(name) {
            if !v.contains(['\r', '\n']) {
                head.push_str(&format!("{name}: {v}\r\n"));
            }
        }
    }
    head.push_str(&format!("Herald-Delivered: {}\r\n\r\n", d.delivered));
    let call = async {
        let mut s = tokio::net::TcpStream::connect((url.host.as_str(), url.port)).await?;
        s.write_all(head.as_bytes()).await?;
        s.write_all(&d.payload).await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<Vec<u8>, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, call).await {
        Err(_) => {
            return Err(HandlerError::Retry(format!(
                "HTTP timeout after {timeout:?}"
            )))
        }
        Ok(Err(e)) => return Err(HandlerError::Retry(format!("HTTP error: {e}"))),
        Ok(Ok(b)) => b,
    };
    let text = String::from_utf8_lossy(&buf);
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 | 0 => Err(HandlerError::Retry(truncate(&format!(
            "HTTP {status}: {body}"
        )))),
        _ => Err(HandlerError::Reject(truncate(&format!(
            "HTTP {status}: {body}"
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            subject: "usage.metered.api_call".into(),
            payload: bytes::Bytes::from_static(b"{\"event_id\":\"e-1\"}"),
            value: serde_json::json!({"event_id": "e-1"}),
            headers: async_nats::HeaderMap::new(),
            schema_id: "s".into(),
            delivered: 1,
            stream_seq: 7,
            stream: "USAGE".into(),
            correlation_id: Some("c-1".into()),
            key: Some("e-1".into()),
        }
    }

    /// A one-shot HTTP server answering with `status` and `body`; returns its URL and the request.
    async fn answer(
        status: &str,
        body: &'static str,
    ) -> (HttpUrl, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let status = status.to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 8192];
            let mut req = Vec::new();
            loop {
                let n = s.read(&mut buf).await.unwrap();
                req.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&req);
                if n == 0 || (text.contains("\r\n\r\n") && text.ends_with('}')) {
                    break;
                }
            }
            let resp = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            s.write_all(resp.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&req).into_owned()
        });
        (
            format!("http://127.0.0.1:{port}/events").parse().unwrap(),
            task,
        )
    }

    #[tokio::test]
    async fn http_status_maps_to_outcome() {
        let t = Duration::from_secs(5);
        let (url, req) = answer("200 OK", "").await;
        let h = ExternalHandler::Http { url, timeout: t };
        assert_eq!(h.handle(delivery()).await, Ok(()));
        let req = req.await.unwrap();
        assert!(req.starts_with("POST /events HTTP/1.1"), "{req}");
        assert!(req.contains("ce-type: usage.metered.api_call"), "{req}");
        assert!(req.ends_with("{\"event_id\":\"e-1\"}"), "{req}");
        for (status, retry) in [
            ("503 Service Unavailable", true),
            ("429 Too Many Requests", true),
            ("422 Unprocessable", false),
        ] {
            let (url, _) = answer(status, "nope").await;
            let r = ExternalHandler::Http { url, timeout: t }
                .handle(delivery())
                .await;
            match r {
                Err(HandlerError::Retry(e)) => assert!(retry, "{status}: {e}"),
                Err(HandlerError::Reject(e)) => {
                    assert!(!retry, "{status}");
                    assert_eq!(e, "HTTP 422: nope");
                }
                Ok(()) => panic!("{status} acked"),
            }
        }
        // Nobody listening: retry, not reject.
        let port = herald_test_server::free_port().unwrap();
        let url: HttpUrl = format!("http://127.0.0.1:{port}/").parse().unwrap();
        assert!(matches!(
            ExternalHandler::Http { url, timeout: t }
                .handle(delivery())
                .await,
            Err(HandlerError::Retry(_))
        ));
    }

    #[tokio::test]
    async fn exec_exit_codes_map_to_outcomes() {
        let t = Duration::from_secs(10);
        let run = |c: &str| ExternalHandler::Exec {
            command: c.to_string(),
            timeout: t,
        };
        assert_eq!(
            run("grep -q e-1 && [ \"$HERALD_STREAM_SEQ\" = 7 ]")
                .handle(delivery())
                .await,
            Ok(())
        );
        assert!(matches!(
            run("exit 75").handle(delivery()).await,
            Err(HandlerError::Retry(_))
        ));
        assert_eq!(
            run("echo broken >&2; exit 3").handle(delivery()).await,
            Err(HandlerError::Reject("exit 3: broken".into()))
        );
    }

    #[test]
    fn urls_parse() {
        let u: HttpUrl = "http://127.0.0.1:8080/events?x=1".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/events?x=1")
        );
        let u: HttpUrl = "http://svc".parse().unwrap();
        assert_eq!((u.port, u.path.as_str()), (80, "/"));
        assert!("https://svc".parse::<HttpUrl>().is_err());
    }
}
