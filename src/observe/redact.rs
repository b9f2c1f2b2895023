//! Credentials never leave pointsman: a URL's password (`redis://user:***@host:6379/0`,
//! `http://u:***@traefik:8080/metrics`) and secret-looking query values (`?token=***`) are
//! masked in every text the status server shows (page, `/status.json`) and in the log.
//!
//! Pure text in, text out: it finds `SCHEME://` anywhere in a message, so an error that quotes
//! a URL is masked whoever wrote it. It masks too much rather than too little: the userinfo
//! ends at the last `@` before the next blank, as the store URL's own parser reads it (a
//! password may hold `@` or `/`).

use std::borrow::Cow;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Query parameters whose value is masked: a name containing one of these (any case).
const SECRET_PARAMS: &[&str] = &["token", "pass", "secret", "key", "auth", "sig", "credential"];

/// `text` with every URL password and secret query value replaced by [`MASK`]; borrowed when
/// there was nothing to mask.
pub fn redact(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        mask_url(url, &mut out);
        rest = tail;
    }
    out.push_str(rest);
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// Where a URL quoted in a message ends.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`')
}

/// Appends `url` (what follows `SCHEME://`) to `out`, masked.
fn mask_url(url: &str, out: &mut String) {
    let rest = match url.rsplit_once('@') {
        Some((userinfo, rest)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            rest
        }
        None => url,
    };
    let Some((path, query)) = rest.split_once('?') else {
        out.push_str(rest);
        return;
    };
    out.push_str(path);
    out.push('?');
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _value)) if is_secret_param(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(pair),
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| name.contains(s))
}

/// Masks a string in place (the observer's inputs).
pub fn redact_in_place(text: &mut String) {
    if let Cow::Owned(masked) = redact(text) {
        *text = masked;
    }
}

/// Masks every string in a JSON value (the last pass of `/status.json`).
pub fn redact_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => redact_in_place(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(redact_json),
        _ => {}
    }
}

/// A log writer that masks each line before it reaches `W` (tracing's formatter hands it one
/// whole event per `write`).
pub struct Redacting<W>(pub W);

impl<W: std::io::Write> std::io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        match redact(&text) {
            Cow::Borrowed(_) => self.0.write_all(buf)?,
            Cow::Owned(masked) => self.0.write_all(masked.as_bytes())?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_urls_are_masked_wherever_a_message_quotes_them() {
        for (text, want) in [
            (
                "cannot reach redis://user:s3cr@t/x@db.internal:6379/0: refused",
                "cannot reach redis://user:***@db.internal:6379/0: refused",
            ),
            ("redis://:hunter2@h:6379", "redis://:***@h:6379"),
            (
                "Traefik's metrics at http://scraper:pw@traefik:8080/metrics did not answer",
                "Traefik's metrics at http://scraper:***@traefik:8080/metrics did not answer",
            ),
            (
                "two: \"http://a:1@x\" and <https://b:2@y/p>",
                "two: \"http://a:***@x\" and <https://b:***@y/p>",
            ),
            (
                "GET http://t/metrics?Access_Token=abc&x=1&apikey=zz#f",
                "GET http://t/metrics?Access_Token=***&x=1&apikey=***#f",
            ),
        ] {
            assert_eq!(redact(text), want, "{text}");
        }
    }

    #[test]
    fn text_without_secrets_is_left_as_it_is() {
        for text in [
            "plain",
            "http://traefik:8080/metrics answered 503",
            "redis://alice@h:6379/0",
            "mail bob@example.com, see http://h/x?page=2",
            "unix:///var/run/docker.sock",
        ] {
            assert!(matches!(redact(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn every_string_of_a_json_value_and_every_log_line_is_masked() {
        let mut v = serde_json::json!({"a": ["x http://u:p@h y"], "b": {"c": "redis://u:p@h"}, "n": 1});
        redact_json(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"a": ["x http://u:***@h y"], "b": {"c": "redis://u:***@h"}, "n": 1})
        );
        let mut log = Redacting(Vec::new());
        std::io::Write::write_all(&mut log, b"ERROR cannot reach redis://u:pw@h:1/0\n").unwrap();
        assert_eq!(
            String::from_utf8(log.0).unwrap(),
            "ERROR cannot reach redis://u:***@h:1/0\n"
        );
    }
}
