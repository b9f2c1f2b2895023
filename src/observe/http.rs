//! The HTTP server of `pointsman run --listen`: axum on the runtime the controller runs on.
//!
//! | route | answers |
//! |---|---|
//! | `GET /metrics` | pointsman's metrics: OpenMetrics when asked for (Prometheus does), else the Prometheus text format |
//! | `GET /healthz` | 200 while the Docker event stream is connected and the last reconcile succeeded, else 503; the body says why |
//! | `GET /` | the status page |
//! | `GET /fragment?since=N` | the page's `<main>`, or 204 while generation `N` is current (the page's live update) |
//! | `GET /status.json` | what the page shows, as JSON |
//!
//! Read-only: every route is GET (HEAD too); any other method is answered 405. Handlers only
//! read the [`Observer`]: no Docker call, no state lock, no disk.
//!
//! A good neighbour: only the Host names it is configured for are answered ([`hosts`], against
//! DNS rebinding: 421 otherwise, 400 without a Host); at most [`Options::max_connections`]
//! connections are served at once; a request head must arrive within
//! [`Options::header_timeout`] (slowloris), which also closes idle keep-alive connections; and
//! no credential is shown ([`redact`]).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::service::Service as _;
use tokio::sync::Semaphore;

use super::hosts::{self, HostName, Hosts, Refusal};
use super::{Observer, page, redact};

/// Scripts and styles only from this server (`page.js`, `page.css`): no inline script or
/// event handler can run, whatever a label value manages to put on the page.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The routes, reading `observer`.
pub fn router(observer: Arc<Observer>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/fragment", get(fragment))
        .route("/status.json", get(status_json))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/page.js", get(script))
        .route("/page.css", get(style))
        .with_state(observer)
        .layer(axum::middleware::map_response(secure))
}

/// `pointsman healthcheck`: GETs `url` (the controller's `/healthz`, 3 s timeout). `Ok` with
/// the body on 200; else `Err` with `" (HTTP 503): reason"` or `": why there was no answer"`.
pub async fn healthcheck(url: &str) -> Result<String, String> {
    let client = crate::traefik::http::HttpClient::new(std::time::Duration::from_secs(3));
    match client.get(url).await {
        Ok(r) if r.status == 200 => Ok(r.text().trim_end().to_string()),
        Ok(r) => Err(format!(" (HTTP {}): {}", r.status, r.text().trim_end())),
        Err(e) => Err(format!(": GET {url}: {e}")),
    }
}

/// How the status server protects itself and the operator (`run --listen-host`, and the
/// hidden `--listen-max-connections` and `--listen-header-timeout` tests shorten).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Hosts answered besides loopback and the listen address (`--listen-host`).
    pub hosts: Vec<HostName>,
    /// Connections served at once; the next ones wait in the kernel's accept queue, costing
    /// pointsman nothing, until one closes.
    pub max_connections: usize,
    /// A connection waiting for a request (its first, or the next one on keep-alive) is closed
    /// when the request's head has not fully arrived this long after it started waiting: the
    /// header-read timeout (slowloris) and the idle keep-alive timeout at once.
    pub header_timeout: Duration,
}

/// [`Options::max_connections`] by default: a few browsers and scrapers need a handful.
pub const MAX_CONNECTIONS: usize = 64;
/// [`Options::header_timeout`] by default (the page polls every 2 s, Prometheus every 15 s on
/// a new or a kept connection: both well served).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is asked to close after this long (at its next idle moment), and dropped
/// [`Options::header_timeout`] later if a response is still being written: a client that
/// never reads its response cannot hold a connection forever.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Largest request head read (hyper's floor is 8 KiB); larger is answered 431.
const MAX_HEAD: usize = 16 * 1024;
/// Distinct refused hosts named in the log (each once), so a flood cannot fill the log.
const REFUSALS_LOGGED: usize = 16;

impl Default for Options {
    fn default() -> Self {
        Options {
            hosts: Vec::new(),
            max_connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
        }
    }
}

/// Binds `addr` and serves on a thread of its own, with its own single-threaded runtime (and,
/// with `traffic_url`, samples Traefik's metrics there). Own thread, because the controller's
/// thread blocks on the state lock while a CLI call holds it and on fsyncs while it writes:
/// `/healthz` and the page must answer meanwhile, and must not delay a switch either.
pub fn spawn(
    addr: std::net::SocketAddr,
    observer: Arc<Observer>,
    traffic_url: Option<String>,
    options: Options,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    if bound.ip().is_unspecified() && options.hosts.is_empty() {
        tracing::info!(
            "the status server on {bound} answers Host localhost, loopback addresses and the address a client dials, as this machine's names are unknown to it: name the others it is reached by (a container or service name a scraper uses) with {} NAME",
            hosts::FLAG
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new()
        .name("pointsman-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                // Several Traefiks (a comma list, one per host): the page shows the first's.
                if let Some(url) = traffic_url.as_deref().and_then(|u| u.split(',').next()) {
                    tokio::spawn(super::sample_traffic(observer.clone(), url.trim().to_string()));
                }
                let served = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => serve(listener, observer, options, std::future::pending()).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("the status server stopped: {e}");
                }
            })
        })?;
    Ok(bound)
}

/// Serves the routes on `listener` until `shutdown` resolves, then lets open connections
/// finish their request and waits for them.
///
/// hyper's HTTP/1 connection driven directly (not `axum::serve`): it is what has the
/// header-read timeout, and each connection needs its own address for the Host check.
pub async fn serve(
    listener: tokio::net::TcpListener,
    observer: Arc<Observer>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listen = listener.local_addr()?;
    let guard = Arc::new(Guard {
        hosts: Hosts::new(listen, &options.hosts),
        logged: Mutex::new(BTreeSet::new()),
    });
    let routes = router(observer);
    let max = options.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A permit first, then accept: past the limit, clients wait in the accept queue.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::debug!("the status server could not accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let local = stream.local_addr().ok();
        let service = {
            let guard = guard.clone();
            let routes = hyper_util::service::TowerToHyperService::new(routes.clone());
            hyper::service::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
                let refusal = guard.refuse(&request, local, peer);
                let answer = refusal.is_none().then(|| routes.call(request));
                async move {
                    match (refusal, answer) {
                        (Some(refused), _) => Ok(refused),
                        (None, Some(answer)) => answer.await,
                        (None, None) => unreachable!("a request is refused or answered"),
                    }
                }
            })
        };
        let mut stopped = stopped.clone();
        let timeout = options.header_timeout;
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_HEAD)
                .keep_alive(true);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => Some(ended),
                () = tokio::time::sleep(CONNECTION_LIFETIME) => None,
                _ = stopped.wait_for(|stop| *stop) => None,
            };
            let ended = match ended {
                Some(ended) => ended,
                None => {
                    connection.as_mut().graceful_shutdown();
                    tokio::time::timeout(timeout, connection).await.unwrap_or(Ok(()))
                }
            };
            if let Err(e) = ended {
                // A header timeout, a client gone mid-request: the client's business.
                tracing::debug!("status server connection from {peer}: {e}");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    let _ = permits.acquire_many(max as u32).await;
    Ok(())
}

/// The Host check of one server, and which refused hosts it has logged.
struct Guard {
    hosts: Hosts,
    logged: Mutex<BTreeSet<String>>,
}

impl Guard {
    /// The answer to a request whose Host is not one this server answers, if it is not.
    fn refuse<B>(
        &self,
        request: &axum::http::Request<B>,
        local: Option<std::net::SocketAddr>,
        peer: std::net::SocketAddr,
    ) -> Option<Response> {
        let headers = request
            .headers()
            .get_all(header::HOST)
            .into_iter()
            .map(|v| v.as_bytes());
        let refusal = self
            .hosts
            .check(headers, request.uri().authority().map(|a| a.as_str()), local)
            .err()?;
        let (code, key) = match &refusal {
            Refusal::Unreadable(why) => (StatusCode::BAD_REQUEST, (*why).to_string()),
            Refusal::Unknown(host) => (StatusCode::MISDIRECTED_REQUEST, host.to_string()),
        };
        let mut logged = self.logged.lock().unwrap_or_else(|p| p.into_inner());
        if logged.len() < REFUSALS_LOGGED && logged.insert(key) {
            match &refusal {
                Refusal::Unknown(host) => tracing::warn!(
                    "the status server refused a request from {peer} for host {host} (answered {code}): if that is how it is reached, add {} {host}; this host is not logged again",
                    hosts::FLAG
                ),
                Refusal::Unreadable(why) => {
                    tracing::warn!("the status server refused a request from {peer} (answered {code}): {why}")
                }
            }
        }
        drop(logged);
        let mut response = (
            code,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            refusal.message(),
        )
            .into_response();
        secure_headers(&mut response);
        Some(response)
    }
}

async fn secure(mut response: Response) -> Response {
    secure_headers(&mut response);
    response
}

fn secure_headers(response: &mut Response) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}

fn with_type(content_type: &'static str, body: impl Into<Body>) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body.into()).into_response()
}

const HTML: &str = "text/html; charset=utf-8";

async fn index(State(o): State<Arc<Observer>>) -> Response {
    with_type(HTML, page::page(&o.view()))
}

async fn fragment(State(o): State<Arc<Observer>>, uri: Uri) -> Response {
    let since = uri
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("since="))
        .and_then(|v| v.parse::<u64>().ok());
    if since == Some(o.generation()) {
        return StatusCode::NO_CONTENT.into_response();
    }
    let view = o.view();
    let mut response = with_type(HTML, page::fragment(&view));
    response.headers_mut().insert(
        "X-Pointsman-Generation",
        HeaderValue::from_str(&view.generation.to_string()).expect("digits"),
    );
    response
}

async fn status_json(State(o): State<Arc<Observer>>) -> Response {
    // The observer masks what it is told; this last pass masks whatever it was not.
    let mut view = serde_json::to_value(o.view()).expect("the view serialises");
    redact::redact_json(&mut view);
    let body = serde_json::to_string_pretty(&view).expect("the view serialises");
    with_type("application/json", body)
}

async fn healthz(State(o): State<Arc<Observer>>) -> Response {
    let verdict = o.health();
    let code = if verdict.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        verdict.reason + "\n",
    )
        .into_response()
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the classic text format.
async fn metrics(State(o): State<Arc<Observer>>, headers: axum::http::HeaderMap) -> Response {
    let wants_openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    if wants_openmetrics {
        with_type(
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            o.metrics.encode(),
        )
    } else {
        with_type("text/plain; version=0.0.4; charset=utf-8", o.metrics.encode_classic())
    }
}

async fn script() -> Response {
    let mut r = with_type("text/javascript; charset=utf-8", include_str!("assets/page.js"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}

async fn style() -> Response {
    let mut r = with_type("text/css; charset=utf-8", include_str!("assets/page.css"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=300"));
    r
}
