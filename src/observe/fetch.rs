//! A one-shot HTTP/1.0 GET for the two places pointsman is a client of plain-HTTP endpoints
//! on its own network: `pointsman healthcheck` (its own `/healthz`) and the page's samples of
//! Traefik's metrics. HTTP/1.0 with `Connection: close` makes the server send a plain body that
//! ends with the connection (no chunking), so reading to the end is the whole protocol.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Largest response read (Traefik's metrics for a few hundred services fit easily).
const MAX_RESPONSE: u64 = 16 << 20;

/// GETs `url` (`http://HOST:PORT/PATH`) within `timeout`: the status and the body.
pub async fn get(url: &str, timeout: Duration) -> Result<(u16, String), String> {
    tokio::time::timeout(timeout, get_unbounded(url))
        .await
        .map_err(|_| format!("GET {url}: no answer within {} ms", timeout.as_millis()))?
}

async fn get_unbounded(url: &str) -> Result<(u16, String), String> {
    let fail = |what: &dyn std::fmt::Display| format!("GET {url}: {what}");
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| fail(&"only http:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(&addr).await.map_err(|e| fail(&e))?;
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nConnection: close\r\nUser-Agent: pointsman\r\n\r\n");
    stream.write_all(request.as_bytes()).await.map_err(|e| fail(&e))?;
    let mut raw = Vec::new();
    stream
        .take(MAX_RESPONSE)
        .read_to_end(&mut raw)
        .await
        .map_err(|e| fail(&e))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| fail(&"no complete response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| fail(&format!("bad status line {:?}", head.lines().next().unwrap_or(""))))?;
    Ok((status, body.to_string()))
}
