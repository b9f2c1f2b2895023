//! A Docker API proxy the test controls: TCP on 127.0.0.1 in front of Docker's unix socket,
//! used as `DOCKER_HOST=tcp://127.0.0.1:PORT`. Std only, one thread per connection.
//!
//! It relays HTTP/1.1 one exchange at a time: read one request, forward it (or refuse it), relay
//! its whole response, then read the next request. That is the order HTTP/1.1 keeps even for
//! pipelined keep-alive requests, so each request is seen and judged on its own, and a refusal
//! is answered in its place. Streaming responses (`GET /events`) are relayed chunk by chunk as
//! Docker sends them. Connection upgrades (`docker attach`/`exec`) are not relayed: pointsman
//! uses none.
//!
//! Controls:
//! - [`DockerProxy::cut`]: shut every open connection down now (breaks the event stream);
//! - [`DockerProxy::set_down`]: Docker "unreachable": new connections are closed on accept;
//! - [`DockerProxy::set_stalled`]: Docker "hung": new connections are accepted, never answered;
//! - [`DockerProxy::set_frozen`]: Docker "frozen" (a paused socket proxy): stalled, and open
//!   connections stop too: nothing more is relayed either way (the event stream goes silent,
//!   a request on a kept-alive connection gets no answer) until thawed;
//! - GET-only mode ([`DockerProxy::get_only`]): any method but `GET`/`HEAD` is answered `403`
//!   and never reaches Docker, like docker-socket-proxy with `POST=0`;
//! - [`DockerProxy::stats`]: connections, requests by method and endpoint, refusals.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// Longest request or response head relayed; Docker's are a few hundred bytes.
const MAX_HEAD: usize = 64 * 1024;

/// What the proxy saw so far.
#[derive(Debug, Default, Clone)]
pub struct ProxyStats {
    /// Connections accepted and relayed.
    pub connections: u64,
    /// Connections closed on accept while the proxy was down.
    pub refused: u64,
    /// Connections accepted and left unanswered while the proxy was stalled.
    pub stalled: u64,
    /// Connections shut down by [`DockerProxy::cut`].
    pub cut: u64,
    /// Requests by method, relayed or not.
    pub methods: BTreeMap<String, u64>,
    /// Requests by method and endpoint (`GET /containers/{id}/json`: no API version, no query).
    pub endpoints: BTreeMap<String, u64>,
    /// Request lines answered 403 in GET-only mode.
    pub forbidden: Vec<String>,
}

impl ProxyStats {
    pub fn requests(&self) -> u64 {
        self.methods.values().sum()
    }

    /// Requests with a method other than GET and HEAD (relayed or refused).
    pub fn non_get(&self) -> u64 {
        self.methods
            .iter()
            .filter(|(m, _)| !matches!(m.as_str(), "GET" | "HEAD"))
            .map(|(_, n)| n)
            .sum()
    }
}

pub struct DockerProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    socket: PathBuf,
    get_only: bool,
    down: AtomicBool,
    stalled: AtomicBool,
    frozen: AtomicBool,
    /// Connections accepted while stalled, held open unanswered until `cut`.
    held: Mutex<Vec<TcpStream>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    /// Both ends of every open connection, so `cut` can shut them down from outside.
    open: Mutex<BTreeMap<u64, (TcpStream, UnixStream)>>,
    stats: Mutex<ProxyStats>,
}

impl DockerProxy {
    /// A transparent proxy (every method relayed).
    pub fn start() -> DockerProxy {
        Self::start_with(false)
    }

    /// A read-only proxy: only GET and HEAD reach Docker.
    pub fn get_only() -> DockerProxy {
        Self::start_with(true)
    }

    fn start_with(get_only: bool) -> DockerProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            socket: docker_socket(),
            get_only,
            down: AtomicBool::new(false),
            stalled: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
            stats: Mutex::new(ProxyStats::default()),
        });
        let accepting = shared.clone();
        thread::spawn(move || accept_loop(listener, accepting));
        DockerProxy { addr, shared }
    }

    /// `tcp://127.0.0.1:PORT`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Shuts down every open connection now (held ones too); their clients see the end.
    pub fn cut(&self) {
        let open = self.shared.open.lock().unwrap();
        for (client, upstream) in open.values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
        let mut held = self.shared.held.lock().unwrap();
        for client in held.drain(..) {
            let _ = client.shutdown(Shutdown::Both);
        }
        self.shared.stats.lock().unwrap().cut += open.len() as u64;
    }

    /// While down, every new connection is closed as soon as it is accepted. Open connections
    /// are left alone: [`cut`](DockerProxy::cut) them to make Docker wholly unreachable.
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, Ordering::SeqCst);
    }

    /// While stalled, every new connection is accepted and then left unanswered, the way a
    /// paused socket proxy or a dropped route looks to a client: only a timeout ends the wait.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.stalled.store(stalled, Ordering::SeqCst);
    }

    /// While frozen, new connections are held like [`set_stalled`](DockerProxy::set_stalled),
    /// and open ones relay nothing more (requests and response chunks wait) until thawed.
    pub fn set_frozen(&self, frozen: bool) {
        self.shared.frozen.store(frozen, Ordering::SeqCst);
    }

    pub fn stats(&self) -> ProxyStats {
        self.shared.stats.lock().unwrap().clone()
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.cut();
        let _ = TcpStream::connect(self.addr); // wakes the accept loop, which then ends
    }
}

/// Docker's socket: `DOCKER_HOST` if it is a unix socket, else the default path.
fn docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.closed.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.down.load(Ordering::SeqCst) {
            shared.stats.lock().unwrap().refused += 1;
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        if shared.stalled.load(Ordering::SeqCst) || shared.frozen.load(Ordering::SeqCst) {
            shared.stats.lock().unwrap().stalled += 1;
            shared.held.lock().unwrap().push(client);
            continue;
        }
        shared.stats.lock().unwrap().connections += 1;
        let shared = shared.clone();
        thread::spawn(move || {
            let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
            let _ = relay(&shared, id, client);
            if let Some((client, upstream)) = shared.open.lock().unwrap().remove(&id) {
                let _ = client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
            }
        });
    }
}

/// Relays one connection, exchange by exchange, until either side closes it.
fn relay(shared: &Shared, id: u64, client: TcpStream) -> io::Result<()> {
    let upstream = UnixStream::connect(&shared.socket)?;
    shared
        .open
        .lock()
        .unwrap()
        .insert(id, (client.try_clone()?, upstream.try_clone()?));
    let mut from_client = BufReader::new(client.try_clone()?);
    let mut to_client = client;
    let mut from_docker = BufReader::new(upstream.try_clone()?);
    let mut to_docker = upstream;
    loop {
        let Some(request) = Head::read(&mut from_client)? else {
            return Ok(());
        };
        let method = request.start_word().to_string();
        shared.count(&method, request.endpoint());
        if shared.get_only && !matches!(method.as_str(), "GET" | "HEAD") {
            request.copy_body(&mut from_client, &mut io::sink())?;
            shared
                .stats
                .lock()
                .unwrap()
                .forbidden
                .push(request.start_line().to_string());
            let body = format!("{method} is not allowed by this read-only Docker proxy\n");
            write!(
                to_client,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )?;
            if request.closes() {
                return Ok(());
            }
            continue;
        }
        shared.wait_thawed();
        to_docker.write_all(&request.raw)?;
        request.copy_body(&mut from_client, &mut to_docker)?;
        let response = loop {
            let r = Head::read(&mut from_docker)?.ok_or_else(|| eof("Docker closed before answering"))?;
            to_client.write_all(&r.raw)?;
            // 1xx (say, 100 Continue) is interim: the real response follows.
            if !r.status().is_some_and(|s| (100..200).contains(&s) && s != 101) {
                break r;
            }
        };
        let until_eof = response.copy_response_body(shared, &mut from_docker, &mut to_client, method == "HEAD")?;
        if until_eof || request.closes() || response.closes() {
            return Ok(());
        }
    }
}

impl Shared {
    /// Returns once the proxy is not frozen.
    fn wait_thawed(&self) {
        while self.frozen.load(Ordering::SeqCst) && !self.closed.load(Ordering::SeqCst) {
            thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn count(&self, method: &str, endpoint: String) {
        let mut stats = self.stats.lock().unwrap();
        *stats.methods.entry(method.to_string()).or_default() += 1;
        *stats.endpoints.entry(format!("{method} {endpoint}")).or_default() += 1;
    }
}

/// A request or response head: start line and headers, kept as received for relaying.
struct Head {
    raw: Vec<u8>,
    lines: Vec<String>,
}

impl Head {
    /// Reads up to the empty line; `None` when the peer closed cleanly before a new head.
    fn read(r: &mut impl BufRead) -> io::Result<Option<Head>> {
        let mut raw = Vec::new();
        let mut lines = Vec::new();
        loop {
            let start = raw.len();
            if r.read_until(b'\n', &mut raw)? == 0 {
                return if raw.is_empty() {
                    Ok(None)
                } else {
                    Err(eof("connection closed inside a head"))
                };
            }
            let line = String::from_utf8_lossy(&raw[start..]).trim_end().to_string();
            if line.is_empty() {
                if lines.is_empty() {
                    raw.clear(); // a stray CRLF between messages is allowed (RFC 9112 §2.2)
                    continue;
                }
                return Ok(Some(Head { raw, lines }));
            }
            if raw.len() > MAX_HEAD {
                return Err(io::Error::new(ErrorKind::InvalidData, "head too long"));
            }
            lines.push(line);
        }
    }

    fn start_line(&self) -> &str {
        &self.lines[0]
    }

    /// The method of a request.
    fn start_word(&self) -> &str {
        self.start_line().split(' ').next().unwrap_or("")
    }

    /// The status of a response.
    fn status(&self) -> Option<u16> {
        self.start_line().split(' ').nth(1)?.parse().ok()
    }

    /// The request path without the API version, query or container id: `/containers/{id}/json`.
    fn endpoint(&self) -> String {
        let target = self.start_line().split(' ').nth(1).unwrap_or("");
        let path = target.split('?').next().unwrap_or("");
        let mut parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        if parts
            .first()
            .is_some_and(|p| p.starts_with('v') && p[1..].contains('.'))
        {
            parts.remove(0);
        }
        if parts.len() >= 3 && parts[0] == "containers" {
            parts[1] = "{id}";
        }
        format!("/{}", parts.join("/"))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.lines[1..]
            .iter()
            .filter_map(|l| l.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    fn chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> io::Result<Option<u64>> {
        self.header("content-length")
            .map(|v| {
                v.parse()
                    .map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("bad Content-Length {v:?}")))
            })
            .transpose()
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// A request body: chunked, Content-Length, or none.
    fn copy_body(&self, from: &mut impl BufRead, to: &mut impl Write) -> io::Result<()> {
        if self.chunked() {
            copy_chunked(&|| {}, from, to)
        } else {
            copy_exact(from, to, self.content_length()?.unwrap_or(0))
        }
    }

    /// A response body; `Ok(true)` when it was delimited by the end of the connection.
    fn copy_response_body(
        &self,
        shared: &Shared,
        from: &mut impl BufRead,
        to: &mut impl Write,
        head_request: bool,
    ) -> io::Result<bool> {
        let status = self.status().unwrap_or(0);
        if head_request || (100..200).contains(&status) || status == 204 || status == 304 {
            return Ok(false);
        }
        if self.chunked() {
            return copy_chunked(&|| shared.wait_thawed(), from, to).map(|()| false);
        }
        if let Some(len) = self.content_length()? {
            return copy_exact(from, to, len).map(|()| false);
        }
        io::copy(from, to)?;
        Ok(true)
    }
}

fn copy_exact(from: &mut impl BufRead, to: &mut impl Write, len: u64) -> io::Result<()> {
    if io::copy(&mut from.take(len), to)? < len {
        return Err(eof("connection closed inside a body"));
    }
    Ok(())
}

/// Relays a chunked body chunk by chunk, so each Docker event reaches the client at once.
/// `wait` runs before each chunk is passed on (a frozen proxy holds it there).
fn copy_chunked(wait: &dyn Fn(), from: &mut impl BufRead, to: &mut impl Write) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if from.read_until(b'\n', &mut line)? == 0 {
            return Err(eof("connection closed inside a chunked body"));
        }
        wait();
        to.write_all(&line)?;
        let text = String::from_utf8_lossy(&line);
        let hex = text.trim().split(';').next().unwrap_or("");
        let size = u64::from_str_radix(hex, 16)
            .map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("bad chunk size {text:?}")))?;
        if size == 0 {
            // Trailers, then the empty line that ends the body.
            loop {
                line.clear();
                if from.read_until(b'\n', &mut line)? == 0 {
                    return Err(eof("connection closed inside chunked trailers"));
                }
                to.write_all(&line)?;
                if line == b"\r\n" || line == b"\n" {
                    return to.flush();
                }
            }
        }
        copy_exact(from, to, size + 2)?; // the chunk and its CRLF
        to.flush()?;
    }
}

fn eof(what: &str) -> io::Error {
    io::Error::new(ErrorKind::UnexpectedEof, what.to_string())
}
