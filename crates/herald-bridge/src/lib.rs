//! Handlers for services not written in Rust (`herald consume --exec / --http`).
//!
//! herald does the consuming (validation, duplicates, retries, DLQ) and hands each
//! valid event to a command on its standard input, or POSTs it to a URL:
//!
//! | command | HTTP | outcome |
//! |---|---|---|
//! | exit 0 | 2xx, empty body or `{"status":"SUCCESS"}` | ack |
//! | exit 75 (`EX_TEMPFAIL`), killed by a signal, timeout | `{"status":"RETRY"}`, 429, 5xx, timeout, connection error | retry with backoff |
//! | any other exit | `{"status":"DROP"}`, other status (4xx ...) | dead-letter `handler_rejected` with stderr / body |
//!
//! HTTP requests use the CloudEvents binary mode (`ce-specversion`, `ce-id`,
//! `ce-source`, `ce-type`, `ce-time`, `ce-dataschema` headers, the event as the
//! body), and the responses follow Dapr's pub/sub contract too, so an app written
//! for Dapr's delivery works unchanged.

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

/// Longest response body read from a handler (Dapr's status object is tiny).
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Sends the event as a CloudEvents binary-mode request: the body is the event, the
/// attributes are `ce-*` headers (what Dapr's pub/sub delivery and CloudEvents SDKs read).
async fn http(url: &HttpUrl, timeout: Duration, d: &Delivery) -> HandlerResult {
    use http_body_util::{BodyExt, Full, Limited};

    let mut req = hyper::Request::builder()
        .method("POST")
        .uri(url.path.as_str())
        .header("host", format!("{}:{}", url.host, url.port))
        .header("content-type", h::JSON)
        .header("connection", "close")
        .header(h::CE_SPECVERSION, "1.0")
        .header(h::CE_TYPE, d.subject.as_str());
    // ce-id is required by CloudEvents: the event's, else its key, else its stream position.
    let id = d
        .header(h::CE_ID)
        .map(str::to_string)
        .or_else(|| d.key.clone())
        .unwrap_or_else(|| format!("{}:{}", d.stream, d.stream_seq));
    req = req.header(h::CE_ID, id);
    if d.header(h::CE_SOURCE).is_none() {
        req = req.header(h::CE_SOURCE, "herald");
    }
    for name in [
        h::CE_SOURCE,
        h::CE_CORRELATIONID,
        h::CE_DATASCHEMA,
        h::CE_TIME,
        h::TRACEPARENT,
        h::MSG_ID,
    ] {
        if let Some(v) = d.header(name) {
            if let Ok(v) = hyper::header::HeaderValue::from_str(v) {
                req = req.header(name, v);
            }
        }
    }
    let req = match req
        .header("Herald-Delivered", d.delivered.to_string())
        .body(Full::new(d.payload.clone()))
    {
        Ok(r) => r,
        Err(e) => {
            return Err(HandlerError::Retry(format!(
                "cannot build the request: {e}"
            )))
        }
    };
    let call = async {
        let s = tokio::net::TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Ok::<(u16, bytes::Bytes), String>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, call).await {
        Err(_) => {
            return Err(HandlerError::Retry(format!(
                "HTTP timeout after {timeout:?}"
            )))
        }
        Ok(Err(e)) => return Err(HandlerError::Retry(format!("HTTP error: {e}"))),
        Ok(Ok(r)) => r,
    };
    outcome(status, &body)
}

/// Maps a handler's answer, accepting Dapr's pub/sub response contract as well as
/// herald's own: 2xx with an empty (or non-status) body or `{"status":"SUCCESS"}` acks;
/// `{"status":"RETRY"}`, 429 and 5xx retry; `{"status":"DROP"}` and other 4xx dead-letter.
fn outcome(status: u16, body: &[u8]) -> HandlerResult {
    let text = String::from_utf8_lossy(body);
    match status {
        200..=299 => {
            let dapr = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| {
                    v.get("status")
                        .and_then(|s| s.as_str())
                        .map(str::to_ascii_uppercase)
                });
            match dapr.as_deref() {
                None | Some("SUCCESS") | Some("") => Ok(()),
                Some("RETRY") => Err(HandlerError::Retry(truncate(&format!(
                    "HTTP {status}: the app asked to retry (status RETRY)"
                )))),
                Some("DROP") => Err(HandlerError::Reject(truncate(&format!(
                    "HTTP {status}: the app dropped the event (status DROP): {text}"
                )))),
                Some(other) => Err(HandlerError::Retry(truncate(&format!(
                    "HTTP {status}: unknown status {other:?} (expected SUCCESS, RETRY or DROP)"
                )))),
            }
        }
        429 | 500..=599 => Err(HandlerError::Retry(truncate(&format!(
            "HTTP {status}: {text}"
        )))),
        _ => Err(HandlerError::Reject(truncate(&format!(
            "HTTP {status}: {text}"
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
            headers: Default::default(),
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
        assert!(req.contains("ce-specversion: 1.0"), "{req}");
        assert!(req.contains("ce-id: e-1"), "{req}");
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

    #[test]
    fn dapr_response_contract_maps_to_outcomes() {
        assert_eq!(outcome(200, b""), Ok(()));
        assert_eq!(outcome(204, b""), Ok(()));
        assert_eq!(outcome(200, br#"{"status":"SUCCESS"}"#), Ok(()));
        assert_eq!(outcome(200, b"thanks"), Ok(()));
        assert!(matches!(
            outcome(200, br#"{"status":"RETRY"}"#),
            Err(HandlerError::Retry(_))
        ));
        assert!(
            matches!(outcome(200, br#"{"status":"DROP"}"#), Err(HandlerError::Reject(e)) if e.contains("DROP"))
        );
        assert!(matches!(outcome(429, b""), Err(HandlerError::Retry(_))));
        assert!(matches!(outcome(503, b""), Err(HandlerError::Retry(_))));
        assert!(
            matches!(outcome(404, b"no route"), Err(HandlerError::Reject(e)) if e == "HTTP 404: no route")
        );
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
