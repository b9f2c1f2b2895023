//! Which `Host` headers the status server answers, against DNS rebinding: a page on
//! `http://evil.example/` whose name the attacker re-points at 127.0.0.1 reaches the server as
//! the browser's own origin, but its requests still say `Host: evil.example`, so they are
//! refused.
//!
//! Answered, with any port (a published or forwarded port changes it): `localhost`, every
//! loopback address (`127.0.0.1`, `[::1]`), the `--listen` address, the address the
//! connection arrived on (an IP literal cannot be rebound: on `0.0.0.0` this is the machine's
//! address the client dialled), and the names given with `--listen-host`. Nothing else: not a
//! missing `Host` (HTTP/1.0), not two of them, not a name only a resolver would map to us.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

/// The flag (and its variable) that adds names; refusals name it.
pub const FLAG: &str = "--listen-host";
pub const ENV: &str = "POINTSMAN_LISTEN_HOST";

/// A host as a `Host` header or `--listen-host` names it, without its port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum HostName {
    Ip(IpAddr),
    /// Lower case.
    Name(String),
}

impl std::fmt::Display for HostName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostName::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            HostName::Ip(ip) => write!(f, "{ip}"),
            HostName::Name(n) => f.write_str(n),
        }
    }
}

/// `NAME`, `IPv4` or `[IPv6]` (also bare `IPv6` in a flag), optionally `:PORT` when
/// `port_allowed`; `None` if it is none of those.
fn parse(text: &str, port_allowed: bool) -> Option<HostName> {
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let (ip, rest) = v6.split_once(']')?;
        let ip: std::net::Ipv6Addr = ip.parse().ok()?;
        return match rest.strip_prefix(':') {
            None if rest.is_empty() => Some(HostName::Ip(IpAddr::V6(ip).to_canonical())),
            Some(port) if port_allowed && is_port(port) => Some(HostName::Ip(IpAddr::V6(ip).to_canonical())),
            _ => None,
        };
    } else if let Ok(ip) = text.parse::<IpAddr>() {
        // A bare IPv6 address (`::1`) from a flag; in a Host header it is malformed, but as
        // the same address it is the same answer.
        return Some(HostName::Ip(ip.to_canonical()));
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    match port {
        Some(p) if !(port_allowed && is_port(p)) => return None,
        _ => {}
    }
    if let Ok(ip) = host.parse::<std::net::Ipv4Addr>() {
        return Some(HostName::Ip(IpAddr::V4(ip)));
    }
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
    (!host.is_empty() && host.len() <= 253 && host.chars().all(name_char))
        .then(|| HostName::Name(host.to_ascii_lowercase()))
}

fn is_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

/// `--listen-host NAME`: a host name or IP address, no port.
pub fn parse_flag(text: &str) -> Result<HostName, String> {
    let text = text.trim();
    parse(text, false).ok_or_else(|| {
        format!(
            "{FLAG} {text:?}: give a host name or an IP address the status server is reached by, without a port (any port is answered), e.g. {FLAG} pointsman.internal"
        )
    })
}

/// Why a request is not answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No `Host` header (HTTP/1.0), or more than one, or one that is no host.
    Unreadable(&'static str),
    /// A host the server is not configured for.
    Unknown(HostName),
}

/// The hosts one server answers.
#[derive(Debug, Clone)]
pub struct Hosts {
    names: BTreeSet<HostName>,
}

impl Hosts {
    /// The defaults for a server bound to `listen`, and `extra` (`--listen-host`).
    pub fn new(listen: SocketAddr, extra: &[HostName]) -> Hosts {
        let mut names: BTreeSet<HostName> = extra.iter().cloned().collect();
        names.insert(HostName::Name("localhost".into()));
        if !listen.ip().is_unspecified() {
            names.insert(HostName::Ip(listen.ip().to_canonical()));
        }
        Hosts { names }
    }

    /// Whether a request with these `Host` header values (and, in absolute form, this URI
    /// authority), arriving on `local`, is answered.
    pub fn check<'a>(
        &self,
        mut host_headers: impl Iterator<Item = &'a [u8]>,
        uri_authority: Option<&str>,
        local: Option<SocketAddr>,
    ) -> Result<(), Refusal> {
        let header = match (host_headers.next(), host_headers.next()) {
            (None, _) => return Err(Refusal::Unreadable("the request has no Host header")),
            (Some(_), Some(_)) => return Err(Refusal::Unreadable("the request has more than one Host header")),
            (Some(h), None) => h,
        };
        let header = std::str::from_utf8(header)
            .ok()
            .and_then(|h| parse(h, true))
            .ok_or(Refusal::Unreadable("the Host header names no host"))?;
        self.answers(&header, local)?;
        // `GET http://other/ HTTP/1.1`: the target's host is the one that counts; both must do.
        if let Some(authority) = uri_authority {
            let target = parse(authority, true).ok_or(Refusal::Unreadable("the request target names no host"))?;
            self.answers(&target, local)?;
        }
        Ok(())
    }

    fn answers(&self, host: &HostName, local: Option<SocketAddr>) -> Result<(), Refusal> {
        let ok = match host {
            HostName::Ip(ip) => {
                ip.is_loopback() || self.names.contains(host) || local.is_some_and(|l| l.ip().to_canonical() == *ip)
            }
            HostName::Name(_) => self.names.contains(host),
        };
        if ok {
            Ok(())
        } else {
            Err(Refusal::Unknown(host.clone()))
        }
    }

    /// The names answered besides loopback and the connection's own address, for the log.
    pub fn names(&self) -> impl Iterator<Item = &HostName> {
        self.names.iter()
    }
}

impl Refusal {
    /// The response's one-line body.
    pub fn message(&self) -> String {
        match self {
            Refusal::Unreadable(why) => format!(
                "{why}: pointsman's status server answers only requests that name it in one Host header (HTTP/1.1), e.g. Host: localhost\n"
            ),
            Refusal::Unknown(host) => format!(
                "pointsman's status server does not answer for host {host} (DNS rebinding guard): if that is how you reach it, start `pointsman run` with {FLAG} {host} (or {ENV}={host})\n"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(hosts: &Hosts, host: &[&str], local: &str) -> Result<(), Refusal> {
        hosts.check(host.iter().map(|h| h.as_bytes()), None, Some(local.parse().unwrap()))
    }

    #[test]
    fn loopback_names_the_listen_address_and_the_flag_names_are_answered_with_any_port() {
        let extra = [
            parse_flag("Pointsman.Internal").unwrap(),
            parse_flag("10.9.8.7").unwrap(),
        ];
        let hosts = Hosts::new("192.168.1.5:9191".parse().unwrap(), &extra);
        let local = "192.168.1.5:9191";
        for ok in [
            "localhost",
            "LOCALHOST:9191",
            "127.0.0.1",
            "127.0.0.1:8080",
            "127.0.0.2:1",
            "[::1]",
            "[::1]:9191",
            "192.168.1.5:9191",
            "pointsman.internal:80",
            "10.9.8.7",
        ] {
            assert_eq!(check(&hosts, &[ok], local), Ok(()), "{ok}");
        }
        for (bad, named) in [
            ("evil.example", "evil.example"),
            ("evil.example:9191", "evil.example"),
            ("localhost.", "localhost."),
            ("pointsman.internal.evil.example", "pointsman.internal.evil.example"),
            ("10.0.0.1:9191", "10.0.0.1"),
            ("[2001:db8::1]:9191", "[2001:db8::1]"),
        ] {
            match check(&hosts, &[bad], local) {
                Err(Refusal::Unknown(h)) => assert_eq!(h.to_string(), named),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn on_every_address_the_address_dialled_is_answered_and_names_must_be_given() {
        let hosts = Hosts::new("0.0.0.0:9191".parse().unwrap(), &[]);
        assert_eq!(check(&hosts, &["172.18.0.5:9191"], "172.18.0.5:9191"), Ok(()));
        // IPv4 through a dual-stack `[::]` socket.
        assert_eq!(check(&hosts, &["172.18.0.5:9191"], "[::ffff:172.18.0.5]:9191"), Ok(()));
        assert!(matches!(
            check(&hosts, &["172.18.0.6"], "172.18.0.5:9191"),
            Err(Refusal::Unknown(_))
        ));
        assert!(matches!(
            check(&hosts, &["pointsman:9191"], "172.18.0.5:9191"),
            Err(Refusal::Unknown(_))
        ));
    }

    #[test]
    fn no_host_two_hosts_garbage_or_another_target_are_refused() {
        let hosts = Hosts::new("127.0.0.1:9191".parse().unwrap(), &[]);
        let local = "127.0.0.1:9191";
        for host in [
            &[][..],
            &["localhost", "localhost"],
            &[""],
            &["a b"],
            &["x:y"],
            &["u@localhost"],
            &["[::1"],
        ] {
            assert!(
                matches!(check(&hosts, host, local), Err(Refusal::Unreadable(_))),
                "{host:?}"
            );
        }
        let local = Some(local.parse().unwrap());
        assert!(matches!(
            hosts.check([&b"localhost"[..]].into_iter(), Some("evil.example"), local),
            Err(Refusal::Unknown(_))
        ));
        assert_eq!(
            hosts.check([&b"localhost"[..]].into_iter(), Some("127.0.0.1:9191"), local),
            Ok(())
        );
        assert!(
            Refusal::Unknown(HostName::Name("x.test".into()))
                .message()
                .contains("--listen-host x.test")
        );
    }

    #[test]
    fn the_flag_takes_names_and_addresses_without_a_port() {
        assert_eq!(parse_flag("::1"), Ok(HostName::Ip("::1".parse().unwrap())));
        assert_eq!(parse_flag("[::1]"), Ok(HostName::Ip("::1".parse().unwrap())));
        assert_eq!(parse_flag(" Web.Test "), Ok(HostName::Name("web.test".into())));
        for bad in ["", "web.test:80", "*.test", "http://web.test", "[::1]:80"] {
            assert!(parse_flag(bad).is_err(), "{bad}");
        }
    }
}
