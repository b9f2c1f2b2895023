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

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Observer, page};

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

/// Binds `addr` and serves on a thread of its own, with its own single-threaded runtime (and,
/// with `traffic_url`, samples Traefik's metrics there). Own thread, because the controller's
/// thread blocks on the state lock while a CLI call holds it and on fsyncs while it writes:
/// `/healthz` and the page must answer meanwhile, and must not delay a switch either.
pub fn spawn(
    addr: std::net::SocketAddr,
    observer: Arc<Observer>,
    traffic_url: Option<String>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
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
                    Ok(listener) => serve(listener, observer, std::future::pending()).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = served {
                    tracing::error!("the status server stopped: {e}");
                }
            })
        })?;
    Ok(bound)
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    observer: Arc<Observer>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(observer))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
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
    let body = serde_json::to_string_pretty(&o.view()).expect("the view serialises");
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
