//! One HTTP GET with a timeout, over hyper's pooled client (keep-alive across polls).
//!
//! bollard already builds hyper 1 and hyper-util's legacy client, so this is a thin wrapper
//! rather than a hand-rolled HTTP/1.1 client: chunked responses, keep-alive and pooling come
//! from a client that sees wide use. Plain `http://` only: Traefik's API and metrics are
//! served on an internal entrypoint, and pointsman has no TLS stack.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How long one request (connect, send, whole body) may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// A response: status and the whole body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }
}

/// The largest answer read (Traefik's API and metrics of tens of thousands of routers fit many
/// times over): a misconfigured or hostile endpoint cannot make pointsman buffer without limit.
const MAX_BODY: usize = 64 << 20;

/// A pooled client. Pooled connections belong to the tokio runtime that made them, so make
/// one per task that polls rather than one per process.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Empty<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    pub fn new(timeout: Duration) -> HttpClient {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(timeout));
        connector.set_nodelay(true);
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
        }
    }

    /// `GET url`; any status is a response. Errors are in words: an invalid URL, or why no
    /// response came (refused, reset, timed out).
    pub async fn get(&self, url: &str) -> Result<Response, String> {
        let uri: hyper::Uri = url.parse().map_err(|e| format!("invalid URL {url:?}: {e}"))?;
        if uri.scheme_str() != Some("http") {
            return Err(format!("invalid URL {url:?}: only http:// is supported"));
        }
        let request = async {
            let response = self.client.get(uri).await.map_err(|e| error_chain(&e))?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                    Some(_) => format!("the answer is larger than {} MiB", MAX_BODY >> 20),
                    None => error_chain(&*e),
                })?
                .to_bytes();
            Ok(Response { status, body })
        };
        match tokio::time::timeout(self.timeout, request).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }
}

/// `e: cause: cause…`: hyper's top-level errors ("client error (Connect)") say little alone.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}
