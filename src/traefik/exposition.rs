//! The Prometheus text exposition format (version 0.0.4, what Traefik serves), parsed into
//! samples.
//!
//! Why not a crate: `prometheus-parse`, the one parser in wide use, splits label lists on `,`
//! and `=` and stops at the first `}`, so a label value holding `"`, `,`, `=` or `}` (all legal
//! once escaped) is cut apart, and it brings regex and chrono along; `openmetrics-parser` is
//! LGPL and pest-based. The grammar needed here is one line per sample, so ~100 lines of
//! parser are smaller than either dependency, and are tested below on real Traefik output.
//!
//! Grammar, per line: empty; `# HELP name text`, `# TYPE name kind` or any other `#` comment
//! (skipped: a sample's name says what it is, `_bucket`/`_sum`/`_count` included); or
//! `name{label="value",…} value [timestamp]`, where label values escape `\\`, `\"` and `\n`
//! and values are Go floats (`+Inf`, `-Inf`, `NaN`, `1.5e+09`).

use std::fmt;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    /// In the order written; values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
    /// The line, shortened for messages.
    pub text: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {} in {:?}", self.line, self.reason, self.text)
    }
}

impl std::error::Error for ParseError {}

/// Every sample in `text`, in order. The first malformed line is an error: text that is not
/// exposition format (an HTML page, a JSON API) fails on its first line rather than reading as
/// "no traffic".
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let sample = parse_sample(line).map_err(|reason| ParseError {
            line: i + 1,
            reason,
            text: line.chars().take(120).collect(),
        })?;
        samples.push(sample);
    }
    Ok(samples)
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("expected a metric name".into());
    }
    let mut rest = line[name_end..].trim_start();
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = parse_labels(after_brace, &mut labels)?;
    }
    // Value, then an optional timestamp (ignored: Traefik sends none).
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_float(value).ok_or_else(|| format!("value {value:?} is not a number"))?;
    if let Some(ts) = fields.next()
        && ts.parse::<i64>().is_err()
    {
        return Err(format!("timestamp {ts:?} is not an integer"));
    }
    if fields.next().is_some() {
        return Err("unexpected text after the value".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` (the text after `{`); returns what follows the `}`.
fn parse_labels<'a>(mut s: &'a str, out: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok(rest);
        }
        let name_end = s
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or("unterminated label list")?;
        let name = &s[..name_end];
        if name.is_empty() {
            return Err(format!(
                "expected a label name at {:?}",
                s.chars().take(20).collect::<String>()
            ));
        }
        s = s[name_end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or_else(|| format!("expected = after label {name}"))?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or_else(|| format!("expected a quoted value for label {name}"))?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("unterminated value of label {name}")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c @ ('\\' | '"'))) => value.push(c),
                    // The format defines only these three; keep anything else as written.
                    Some((_, c)) => {
                        value.push('\\');
                        value.push(c);
                    }
                    None => return Err(format!("unterminated value of label {name}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        out.push((name.to_string(), value));
        s = s[end + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!("expected , or }} after label {name}"));
        }
    }
}

/// A Go-formatted float: Rust's parser plus Go's spellings of infinity and NaN.
pub fn parse_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ if s.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.') => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_labels_and_values() {
        let text = "# HELP traefik_service_requests_total How many HTTP requests processed on a service.\n\
                    # TYPE traefik_service_requests_total counter\n\
                    traefik_service_requests_total{code=\"200\",method=\"GET\",protocol=\"http\",service=\"web.slot.blue@file\"} 128\n\
                    \n\
                    traefik_config_last_reload_success 1.79598193e+09\n\
                    h_bucket{le=\"+Inf\"} 3 1700000000000\n";
        let samples = parse(text).unwrap();
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "traefik_service_requests_total");
        assert_eq!(samples[0].label("service"), Some("web.slot.blue@file"));
        assert_eq!(samples[0].label("code"), Some("200"));
        assert_eq!(samples[0].value, 128.0);
        assert_eq!(samples[1].labels, []);
        assert_eq!(samples[1].value, 1.79598193e9);
        assert_eq!(samples[2].label("le").and_then(parse_float), Some(f64::INFINITY));
    }

    #[test]
    fn escaped_label_values_keep_quotes_commas_braces_and_newlines() {
        let line = r#"m{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\"",odd="a,b=c}d", trailing="x",} 1.458255915e9"#;
        let s = &parse(line).unwrap()[0];
        assert_eq!(s.label("path"), Some(r"C:\DIR\FILE.TXT"));
        assert_eq!(s.label("error"), Some("Cannot find file:\n\"FILE.TXT\""));
        assert_eq!(s.label("odd"), Some("a,b=c}d"));
        assert_eq!(s.label("trailing"), Some("x"));
        assert_eq!(s.value, 1.458255915e9);
    }

    #[test]
    fn go_float_spellings() {
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("-Inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float("NaN").unwrap().is_nan());
        assert_eq!(parse_float("0.005"), Some(0.005));
        assert_eq!(parse_float("5e-03"), Some(0.005));
        assert_eq!(parse_float("infinity"), None, "not a Go spelling");
        assert_eq!(parse_float("x"), None);
    }

    #[test]
    fn text_that_is_not_exposition_format_fails_on_its_line() {
        for (text, line, reason) in [
            ("ok 1\n<html><body>", 2, "expected a metric name"),
            ("m{a=\"1\" 2", 1, "expected , or }"),
            ("m{a=\"1} 2", 1, "unterminated value"),
            ("m{a=1} 2", 1, "expected a quoted value"),
            ("m", 1, "no value"),
            ("m one", 1, "is not a number"),
            ("m 1 2 3", 1, "unexpected text"),
            ("{\"http\": {}}", 1, "expected a metric name"),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.reason.contains(reason), "{text:?}: {e}");
        }
    }

    #[test]
    fn the_real_traefik_sample_parses() {
        let text = include_str!("../../fixtures/metrics/traefik-3.7.txt");
        let samples = parse(text).unwrap();
        let lines = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        assert_eq!(samples.len(), lines);
        assert!(
            samples
                .iter()
                .any(|s| s.name == "go_gc_duration_seconds" && s.label("quantile") == Some("0.5"))
        );
    }
}
