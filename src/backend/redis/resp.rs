//! A small, blocking Redis client: RESP2 over one TCP connection, with timeouts.
//!
//! pointsman needs a handful of commands (GET/SET/DEL/MGET/SCAN, WATCH/MULTI/EXEC, PSUBSCRIBE)
//! on a connection it owns; the backends are synchronous like the directory ones, so a plain
//! socket with read and write timeouts is all it takes. A failed connection is dropped and the
//! next call dials again, so a restarted Redis is picked up without a restart of pointsman.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

/// How long to wait for Redis to accept a connection or answer a command.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// `redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]`. Its `Display` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub db: u32,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://")?;
        match (&self.username, &self.password) {
            (Some(u), Some(_)) => write!(f, "{u}:***@")?,
            (Some(u), None) => write!(f, "{u}@")?,
            (None, Some(_)) => write!(f, ":***@")?,
            (None, None) => {}
        }
        if self.host.contains(':') {
            write!(f, "[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

/// Debug output must not leak the password either (it ends up in `?config` logs).
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for RedisUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{why}; expected redis://[USER[:PASSWORD]@]HOST[:PORT][/DB]");
        let rest = s
            .strip_prefix("redis://")
            .ok_or_else(|| bad("the store URL must start with redis:// (TLS is not supported)"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (username, password) = match auth {
            None => (None, None),
            Some(a) => {
                let (u, p) = match a.split_once(':') {
                    Some((u, p)) => (u, Some(percent_decode(p))),
                    None => (a, None),
                };
                ((!u.is_empty()).then(|| percent_decode(u)), p)
            }
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse().map_err(|_| bad(&format!("database {d:?} is not a number")))?,
            ),
            None => (rest, 0),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, p) = v6.split_once(']').ok_or_else(|| bad("unclosed [ in the host"))?;
            (h.to_string(), p.strip_prefix(':').unwrap_or(""))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p),
                None => (hostport.to_string(), ""),
            }
        };
        if host.is_empty() {
            return Err(bad("the store URL names no host"));
        }
        let port = if port.is_empty() {
            6379
        } else {
            port.parse()
                .map_err(|_| bad(&format!("port {port:?} is not a port number")))?
        };
        Ok(RedisUrl {
            host,
            port,
            db,
            username,
            password,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Nil,
    Int(i64),
    Data(Vec<u8>),
    Status(String),
    Error(String),
    Array(Vec<Value>),
}

impl Value {
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Data(d) => Some(d),
            Value::Status(s) => Some(s.into_bytes()),
            _ => None,
        }
    }

    pub fn into_string(self) -> Option<String> {
        self.into_bytes().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    pub fn into_array(self) -> Vec<Value> {
        match self {
            Value::Array(a) => a,
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    #[error("cannot reach Redis at {url}: {source}")]
    Io { url: String, source: io::Error },
    #[error("Redis at {url} refused {command}: {message}")]
    Refused {
        url: String,
        command: String,
        message: String,
    },
    #[error(
        "Redis at {url} sent a malformed reply: {what}; check that --store names a Redis server (pointsman sends RESP2, no TLS)"
    )]
    Protocol { url: String, what: String },
}

impl RedisError {
    /// Whether the connection is unusable and must be dialled again.
    pub fn is_connection(&self) -> bool {
        !matches!(self, RedisError::Refused { .. })
    }
}

/// Arguments of one command.
pub type Cmd = Vec<Vec<u8>>;

/// Builds a command from anything byte-like: `cmd(["SET", key, value])`.
pub fn cmd<I, A>(args: I) -> Cmd
where
    I: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    args.into_iter().map(|a| a.as_ref().to_vec()).collect()
}

/// One connection, authenticated and on its database.
pub struct Conn {
    url: RedisUrl,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    pub fn open(url: &RedisUrl) -> Result<Conn, RedisError> {
        let io = |source| RedisError::Io {
            url: url.to_string(),
            source,
        };
        let addrs: Vec<_> = (url.host.as_str(), url.port).to_socket_addrs().map_err(io)?.collect();
        let mut last = io::Error::new(io::ErrorKind::NotFound, "the host name resolves to no address");
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| io(last))?;
        stream.set_nodelay(true).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        let writer = stream.try_clone().map_err(io)?;
        let mut conn = Conn {
            url: url.clone(),
            reader: BufReader::new(stream),
            writer,
        };
        if let Some(password) = &url.password {
            let auth = match &url.username {
                Some(user) => cmd(["AUTH", user.as_str(), password.as_str()]),
                None => cmd(["AUTH", password.as_str()]),
            };
            conn.call(&auth)?;
        }
        if url.db != 0 {
            conn.call(&cmd(["SELECT", &url.db.to_string()]))?;
        }
        Ok(conn)
    }

    /// Blocks without a read timeout (a subscription waits for messages).
    pub fn wait_forever(&mut self) -> Result<(), RedisError> {
        self.reader
            .get_ref()
            .set_read_timeout(None)
            .map_err(|source| RedisError::Io {
                url: self.url.to_string(),
                source,
            })
    }

    /// Sends one command and reads its reply; an error reply is an `Err`.
    pub fn call(&mut self, command: &Cmd) -> Result<Value, RedisError> {
        self.send(std::slice::from_ref(command))?;
        match self.read()? {
            Value::Error(message) => Err(self.refused(command, message)),
            v => Ok(v),
        }
    }

    /// Sends several commands in one write and reads their replies (error replies included as
    /// values: in a MULTI, each is looked at by the caller).
    pub fn pipeline(&mut self, commands: &[Cmd]) -> Result<Vec<Value>, RedisError> {
        self.send(commands)?;
        (0..commands.len()).map(|_| self.read()).collect()
    }

    pub fn refused(&self, command: &Cmd, message: String) -> RedisError {
        RedisError::Refused {
            url: self.url.to_string(),
            command: command
                .first()
                .map(|c| String::from_utf8_lossy(c).to_uppercase())
                .unwrap_or_default(),
            message,
        }
    }

    pub fn send(&mut self, commands: &[Cmd]) -> Result<(), RedisError> {
        let mut out = Vec::new();
        for c in commands {
            out.extend_from_slice(format!("*{}\r\n", c.len()).as_bytes());
            for arg in c {
                out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
                out.extend_from_slice(arg);
                out.extend_from_slice(b"\r\n");
            }
        }
        self.writer.write_all(&out).map_err(|source| RedisError::Io {
            url: self.url.to_string(),
            source,
        })
    }

    pub fn read(&mut self) -> Result<Value, RedisError> {
        let url = self.url.to_string();
        read_value(&mut self.reader).map_err(|e| match e {
            ReadError::Io(source) => RedisError::Io { url, source },
            ReadError::Protocol(what) => RedisError::Protocol { url, what },
        })
    }
}

enum ReadError {
    Io(io::Error),
    Protocol(String),
}

/// Largest bulk string accepted: 64 MiB. Redis's own limit (`proto-max-bulk-len`) is 512 MiB,
/// but the largest value pointsman stores, the state key, is a few MiB even with thousands
/// of apps (its history is bounded); 64 MiB leaves room for that many times over while a
/// server (or anything answering on its port) cannot make pointsman buffer half a GiB.
pub const MAX_BULK: usize = 64 << 20;

/// Largest array accepted: replies are one entry per key (MGET, SCAN pages of 1,000), and
/// a million keys is far more than pointsman reads at once.
pub const MAX_ARRAY: usize = 1 << 20;

/// Deepest nesting accepted: pointsman's deepest reply is an EXEC's array of replies (2);
/// a bound keeps a hostile reply from exhausting the stack.
pub const MAX_DEPTH: usize = 32;

/// Longest status, error or header line: these are short ("+OK", "$12", "-ERR …").
pub const MAX_LINE: usize = 64 << 10;

/// Most bytes one reply may hold in all (its lines, data and values together): four largest
/// bulk strings. Memory is spent only as bytes arrive and never beyond this.
pub const MAX_REPLY: usize = 4 * MAX_BULK;

/// Reads one reply. Every length comes from the peer, so none is trusted: each is bounded,
/// nothing is allocated ahead of the bytes that fill it, and garbage is a `Protocol` error.
fn read_value(r: &mut impl BufRead) -> Result<Value, ReadError> {
    let mut budget = MAX_REPLY;
    read_nested(r, 0, &mut budget)
}

fn read_nested(r: &mut impl BufRead, depth: usize, budget: &mut usize) -> Result<Value, ReadError> {
    let bad = |what: String| Err(ReadError::Protocol(what));
    let mut line = Vec::new();
    // One byte more than the limit tells a line that is too long from one that fits.
    r.by_ref()
        .take(MAX_LINE as u64 + 3)
        .read_until(b'\n', &mut line)
        .map_err(ReadError::Io)?;
    if line.is_empty() {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Redis closed the connection",
        )));
    }
    if !line.ends_with(b"\n") && line.len() > MAX_LINE + 2 {
        return bad(format!("a line longer than {} KiB", MAX_LINE >> 10));
    }
    if !line.ends_with(b"\r\n") {
        return bad(if line.ends_with(b"\n") {
            "a line ending in LF without CR".into()
        } else {
            "the connection closed in the middle of a line".into()
        });
    }
    line.truncate(line.len() - 2);
    spend(budget, line.len() + 2 + std::mem::size_of::<Value>())?;
    let Some((&kind, rest)) = line.split_first() else {
        return bad("an empty line where a reply was expected".into());
    };
    let rest = String::from_utf8_lossy(rest).into_owned();
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| ReadError::Protocol(format!("{:?} is not a number", cut(s))))
    };
    Ok(match kind {
        b'+' => Value::Status(rest),
        b'-' => Value::Error(rest),
        b':' => Value::Int(number(&rest)?),
        b'$' => {
            let n = match number(&rest)? {
                -1 => return Ok(Value::Nil),
                n if n < 0 => return bad(format!("bulk length {n} (only -1, nil, is negative)")),
                n if n as u64 > MAX_BULK as u64 => {
                    return bad(format!(
                        "bulk length {n}, more than the {} MiB pointsman accepts",
                        MAX_BULK >> 20
                    ));
                }
                n => n as usize,
            };
            spend(budget, n + 2)?;
            // Filled as bytes arrive: a length alone allocates at most 64 KiB.
            let mut data = Vec::with_capacity(n.min(64 << 10) + 2);
            r.by_ref()
                .take(n as u64 + 2)
                .read_to_end(&mut data)
                .map_err(ReadError::Io)?;
            if data.len() < n + 2 {
                return Err(ReadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection in the middle of a reply",
                )));
            }
            if !data.ends_with(b"\r\n") {
                return bad(format!("bulk string of {n} bytes not followed by CRLF"));
            }
            data.truncate(n);
            Value::Data(data)
        }
        b'*' => {
            let n = match number(&rest)? {
                -1 => return Ok(Value::Nil),
                n if n < 0 => return bad(format!("array length {n} (only -1, nil, is negative)")),
                n if n as u64 > MAX_ARRAY as u64 => {
                    return bad(format!(
                        "array of {n} items, more than the {MAX_ARRAY} pointsman accepts"
                    ));
                }
                n => n as usize,
            };
            if n > 0 && depth + 1 >= MAX_DEPTH {
                return bad(format!("arrays nested {MAX_DEPTH} deep or more"));
            }
            let mut items = Vec::with_capacity(n.min(1024));
            for _ in 0..n {
                items.push(read_nested(r, depth + 1, budget)?);
            }
            Value::Array(items)
        }
        other => return bad(format!("unknown reply type {:?}", other as char)),
    })
}

/// Reads the first reply in `bytes` as the client reads one off the socket: the fuzz target's
/// entry (`fuzz/`). Running out of bytes is an error like any other.
pub fn parse_reply(mut bytes: &[u8]) -> Result<Value, String> {
    read_value(&mut bytes).map_err(|e| match e {
        ReadError::Io(e) => e.to_string(),
        ReadError::Protocol(what) => what,
    })
}

/// Takes `n` bytes from what one reply may still hold.
fn spend(budget: &mut usize, n: usize) -> Result<(), ReadError> {
    *budget = budget.checked_sub(n).ok_or_else(|| {
        ReadError::Protocol(format!(
            "a reply larger than the {} MiB pointsman accepts",
            MAX_REPLY >> 20
        ))
    })?;
    Ok(())
}

/// The start of a garbage line, for an error message.
fn cut(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A connection dialled on first use and again after it failed.
pub struct Client {
    url: RedisUrl,
    conn: Option<Conn>,
}

impl Client {
    pub fn new(url: RedisUrl) -> Client {
        Client { url, conn: None }
    }

    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// Runs `f` on the connection; a connection error drops it, so the next call dials again.
    pub fn with<T>(&mut self, f: impl FnOnce(&mut Conn) -> Result<T, RedisError>) -> Result<T, RedisError> {
        if self.conn.is_none() {
            self.conn = Some(Conn::open(&self.url)?);
        }
        let conn = self.conn.as_mut().expect("just dialled");
        let result = f(conn);
        if let Err(e) = &result
            && e.is_connection()
        {
            self.conn = None;
        }
        result
    }

    pub fn call(&mut self, command: &Cmd) -> Result<Value, RedisError> {
        self.with(|c| c.call(command))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let u: RedisUrl = "redis://pointsman:s3cr%40t@10.0.0.5:6380/2".parse().unwrap();
        assert_eq!(u.host, "10.0.0.5");
        assert_eq!(u.port, 6380);
        assert_eq!(u.db, 2);
        assert_eq!(u.username.as_deref(), Some("pointsman"));
        assert_eq!(u.password.as_deref(), Some("s3cr@t"));
        assert_eq!(u.to_string(), "redis://pointsman:***@10.0.0.5:6380/2");
        assert_eq!(format!("{u:?}"), "redis://pointsman:***@10.0.0.5:6380/2");
        let u: RedisUrl = "redis://:pw@redis".parse().unwrap();
        assert_eq!((u.port, u.db, u.username.as_deref()), (6379, 0, None));
        assert_eq!(u.to_string(), "redis://:***@redis:6379/0");
        let u: RedisUrl = "redis://[::1]:7000/".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 7000));
        assert!("http://x".parse::<RedisUrl>().unwrap_err().contains("redis://"));
        assert!(
            "redis://x/abc"
                .parse::<RedisUrl>()
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn replies_are_read() {
        let mut input: &[u8] = b"*3\r\n$3\r\nfoo\r\n$-1\r\n:7\r\n+OK\r\n-ERR no\r\n*-1\r\n";
        assert_eq!(
            read_value(&mut input).ok(),
            Some(Value::Array(vec![
                Value::Data(b"foo".to_vec()),
                Value::Nil,
                Value::Int(7)
            ]))
        );
        assert_eq!(read_value(&mut input).ok(), Some(Value::Status("OK".into())));
        assert_eq!(read_value(&mut input).ok(), Some(Value::Error("ERR no".into())));
        assert_eq!(read_value(&mut input).ok(), Some(Value::Nil));
    }

    /// What reading `input` says, as the operator would see it (`Io` for a cut connection).
    fn garbage(input: &[u8]) -> String {
        match read_value(&mut &input[..]) {
            Ok(v) => panic!("{input:?} was read as {v:?}"),
            Err(ReadError::Protocol(what)) => what,
            Err(ReadError::Io(e)) => format!("io: {e}"),
        }
    }

    #[test]
    fn garbage_replies_are_errors_not_panics() {
        assert_eq!(garbage(b"\r\n"), "an empty line where a reply was expected");
        assert!(garbage(b"\n").contains("LF without CR"));
        assert!(garbage(b"$99999999999\r\n").contains("more than the 64 MiB"));
        assert!(garbage(b"$9223372036854775807\r\n").contains("more than the 64 MiB"));
        assert!(garbage(b"$-2\r\n").contains("bulk length -2"));
        assert!(garbage(b"*-5\r\n").contains("array length -5"));
        assert!(garbage(b"*99999999999\r\n").contains("more than the 1048576"));
        assert!(garbage(b"$x\r\n").contains("is not a number"));
        assert!(garbage(b":\r\n").contains("is not a number"));
        assert!(garbage(b"?what\r\n").contains("unknown reply type"));
        assert!(garbage(b"$3\r\nfooXY").contains("not followed by CRLF"));
        assert!(garbage(b"$10\r\nfoo").starts_with("io: "));
        assert!(garbage(b"+OK").contains("middle of a line"));
        let long = [b"+".as_slice(), &vec![b'a'; MAX_LINE + 10], b"\r\n"].concat();
        assert!(garbage(&long).contains("longer than 64 KiB"));
        // Thousands deep: refused at the bound, no stack overflow.
        let deep = b"*1\r\n".repeat(100_000);
        assert!(garbage(&deep).contains("nested 32 deep"), "{}", garbage(&deep));
        // Many bulk strings, each within its bound: the reply's total is bounded too (here a
        // budget of 1 KiB stands for MAX_REPLY).
        let item = [b"$100\r\n".as_slice(), &[b'x'; 100], b"\r\n"].concat();
        let many = [b"*1000\r\n".to_vec(), item.repeat(20)].concat();
        match read_nested(&mut many.as_slice(), 0, &mut 1024) {
            Err(ReadError::Protocol(what)) => assert!(what.contains("a reply larger than"), "{what}"),
            _ => panic!("a reply over its budget is refused"),
        }
    }

    #[test]
    fn replies_within_the_bounds_are_read() {
        let mut nested = b"*1\r\n".repeat(MAX_DEPTH - 1);
        nested.extend_from_slice(b":1\r\n");
        let mut v = read_value(&mut nested.as_slice()).ok().expect("31 levels are read");
        for _ in 0..MAX_DEPTH - 1 {
            v = v.into_array().pop().expect("one item");
        }
        assert_eq!(v, Value::Int(1));
        assert_eq!(read_value(&mut &b"+\r\n"[..]).ok(), Some(Value::Status(String::new())));
        assert_eq!(read_value(&mut &b"$0\r\n\r\n"[..]).ok(), Some(Value::Data(Vec::new())));
        assert_eq!(read_value(&mut &b"*0\r\n"[..]).ok(), Some(Value::Array(Vec::new())));
        let data = vec![b'z'; 1 << 20];
        let mut input = format!("${}\r\n", data.len()).into_bytes();
        input.extend_from_slice(&data);
        input.extend_from_slice(b"\r\n");
        assert_eq!(read_value(&mut input.as_slice()).ok(), Some(Value::Data(data)));
    }
}
