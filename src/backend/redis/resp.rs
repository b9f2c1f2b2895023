//! A small, blocking Redis client: RESP2 over one TCP connection, with timeouts.
//!
//! pointsman needs a handful of commands (GET/SET/DEL/MGET/SCAN, WATCH/MULTI/EXEC, PSUBSCRIBE)
//! on a connection it owns; the backends are synchronous like the directory ones, so a plain
//! socket with read and write timeouts is all it takes. A failed connection is dropped and the
//! next call dials again, so a restarted Redis is picked up without a restart of pointsman.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
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
    #[error("Redis at {url} sent a reply pointsman cannot read: {what}")]
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

fn read_value(r: &mut impl BufRead) -> Result<Value, ReadError> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).map_err(ReadError::Io)?;
    if line.is_empty() {
        return Err(ReadError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "Redis closed the connection",
        )));
    }
    if !line.ends_with(b"\r\n") {
        return Err(ReadError::Protocol("a line without CRLF".into()));
    }
    line.truncate(line.len() - 2);
    let (kind, rest) = (line[0], String::from_utf8_lossy(&line[1..]).into_owned());
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| ReadError::Protocol(format!("{s:?} is not a number")))
    };
    Ok(match kind {
        b'+' => Value::Status(rest),
        b'-' => Value::Error(rest),
        b':' => Value::Int(number(&rest)?),
        b'$' => {
            let n = number(&rest)?;
            if n < 0 {
                return Ok(Value::Nil);
            }
            let mut data = vec![0; n as usize + 2];
            r.read_exact(&mut data).map_err(ReadError::Io)?;
            data.truncate(n as usize);
            Value::Data(data)
        }
        b'*' => {
            let n = number(&rest)?;
            if n < 0 {
                return Ok(Value::Nil);
            }
            let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
            for _ in 0..n {
                items.push(read_value(r)?);
            }
            Value::Array(items)
        }
        other => return Err(ReadError::Protocol(format!("unknown reply type {:?}", other as char))),
    })
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
}
