//! Which hosts a rule can match, as Traefik matches them: the ground for host claims, the
//! catch-all guard and `--allow-host`.
//!
//! Traefik v3.7 (`pkg/muxer/http/matcher.go`, `pkg/muxer/muxer.go`,
//! `pkg/middlewares/requestdecorator`) compares a request's *canonical* host (lower case, port
//! stripped) with:
//! - ``Host(`h`)``: `h` lower-cased; equal, or equal once a trailing dot is dropped from either
//!   side (`web.localhost.` matches `web.localhost` and the reverse). ``Host(`*.d`)`` matches one
//!   label followed by `.d` (`a.d`, not `a.b.d`, not `d`); ``Host(`*`)`` matches everything.
//! - ``HostRegexp(`re`)``: Go's `regexp.MatchString`, which is *unanchored*: `example\.com`
//!   matches `example.com.evil.net`.
//!
//! A rule's [`Footprint`] is either a finite set of [`HostPattern`]s that covers every host it can
//! match, or [`Footprint::Unbounded`] (a catch-all). It is computed over the whole expression,
//! not only its top-level `||`: an `&&` is bounded when any operand is, an `||` only when every
//! branch is, and anything under a `!` bounds nothing (``!Host(`a`)`` matches every other host).
//!
//! Patterns over-approximate: two patterns [`overlap`] whenever some host could match both.
//! An exact host is tested against a regexp by running it; two regexps (or a regexp and a
//! wildcard) are compared by the literal suffix each is anchored to, which is sound (hosts
//! ending with two strings exist only when one ends with the other) and may refuse a pair that
//! could in fact coexist; the refusal names both, and the fix is to use `Host` rules.

use serde::{Deserialize, Serialize};

/// A set of hosts one matcher can match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostPattern {
    /// ``Host(`h`)``: `h` lower case, trailing dots and a port removed.
    Exact(String),
    /// ``Host(`*.d`)``: one label, then `.d` (`d` normalised like an exact host).
    Wildcard(String),
    /// ``HostRegexp(`re`)`` whose every alternative is anchored at the end (`$`) after a literal
    /// containing a dot: hosts ending with one of those literals.
    Regexp(String),
}

/// What a rule can match, host-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Footprint {
    /// Every host the rule can match is matched by one of these (an empty set: it matches none).
    Hosts(Vec<HostPattern>),
    /// The rule can match hosts no pattern bounds: a catch-all.
    Unbounded,
}

impl Footprint {
    pub fn is_bounded(&self) -> bool {
        matches!(self, Footprint::Hosts(_))
    }

    pub fn patterns(&self) -> &[HostPattern] {
        match self {
            Footprint::Hosts(p) => p,
            Footprint::Unbounded => &[],
        }
    }
}

/// A host as Traefik compares it: lower case, without a port, without its trailing dots.
pub fn normalize(host: &str) -> String {
    let mut h = host.trim().to_ascii_lowercase();
    // A port never matches (Traefik strips it from the request); claim the name anyway, so an
    // app cannot dodge the index with `web.localhost:80`.
    if !h.starts_with('[')
        && let Some((name, port)) = h.rsplit_once(':')
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && !name.contains(':')
    {
        h.truncate(name.len());
    }
    // Traefik drops one trailing dot from either side, so ``Host(`a..`)`` takes the request
    // `a.` that ``Host(`a`)`` also takes: claims compare with every trailing dot removed
    // (over-approximate, never missing a shared host).
    while h.len() > 1 && h.ends_with('.') {
        h.pop();
    }
    h
}

/// The pattern of a `Host` argument; `None` for `*` (every host).
pub fn host_pattern(arg: &str) -> Option<HostPattern> {
    if arg.trim() == "*" {
        return None;
    }
    Some(match arg.trim().strip_prefix("*.") {
        Some(domain) => HostPattern::Wildcard(normalize(domain)),
        None => HostPattern::Exact(normalize(arg)),
    })
}

/// The pattern of a `HostRegexp` argument; `None` when some alternative is not anchored at the
/// end after a literal with a dot in it (it can match hosts under any domain).
pub fn regexp_pattern(re: &str) -> Option<HostPattern> {
    let suffixes = regexp_suffixes(re)?;
    if suffixes.iter().all(|s| s.contains('.') || s.is_empty()) && !suffixes.is_empty() {
        Some(HostPattern::Regexp(re.to_string()))
    } else {
        None
    }
}

impl HostPattern {
    /// How an error names it.
    pub fn describe(&self) -> String {
        match self {
            HostPattern::Exact(h) => h.clone(),
            HostPattern::Wildcard(d) => format!("*.{d}"),
            HostPattern::Regexp(re) => format!("HostRegexp(`{re}`)"),
        }
    }

    /// The literal suffixes every host it matches ends with (`.d` for a wildcard, the host for
    /// an exact one). An empty suffix stands for a fully literal alternative (`^web\.com$`),
    /// whose host is then in [`HostPattern::exact_alternatives`].
    fn suffixes(&self) -> Vec<String> {
        match self {
            HostPattern::Exact(h) => vec![h.clone()],
            HostPattern::Wildcard(d) => vec![format!(".{d}")],
            HostPattern::Regexp(re) => regexp_suffixes(re).unwrap_or_else(|| vec![String::new()]),
        }
    }

    /// Whether it can match `host` (normalised), as Traefik would.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Wildcard(d) => host.split_once('.').is_some_and(|(_, rest)| rest == d),
            // Traefik's Host matcher also takes the request `host.`; the regexp sees it as is.
            HostPattern::Regexp(re) => match compile(re) {
                Some(re) => re.is_match(host) || re.is_match(&format!("{host}.")),
                None => self
                    .suffixes()
                    .iter()
                    .any(|s| s.is_empty() || host.ends_with(s.as_str()) || format!("{host}.").ends_with(s.as_str())),
            },
        }
    }

    /// Whether every host it matches is one `allowed` admits (`--allow-host`).
    pub fn within(&self, allowed: &[String]) -> bool {
        let under = |text: &str| {
            allowed.iter().any(|a| match a.strip_prefix("*.") {
                Some(domain) => text.ends_with(&format!(".{domain}")),
                None => false,
            })
        };
        match self {
            HostPattern::Exact(h) => allowed.iter().any(|a| match a.strip_prefix("*.") {
                Some(domain) => h.len() > domain.len() + 1 && h.ends_with(&format!(".{domain}")),
                None => a == h,
            }),
            HostPattern::Wildcard(d) => under(&format!("x.{d}")) || under(d),
            HostPattern::Regexp(_) => {
                let s = self.suffixes();
                !s.is_empty() && s.iter().all(|s| !s.is_empty() && under(s))
            }
        }
    }
}

/// Whether some host can match both patterns (sound: never `false` when one exists).
pub fn overlap(a: &HostPattern, b: &HostPattern) -> bool {
    use HostPattern::*;
    match (a, b) {
        (Exact(x), Exact(y)) => x == y,
        (Exact(h), p) | (p, Exact(h)) => p.matches(h),
        (Wildcard(x), Wildcard(y)) => x == y,
        _ => {
            let (sa, sb) = (a.suffixes(), b.suffixes());
            sa.iter().any(|x| {
                sb.iter()
                    .any(|y| x.is_empty() || y.is_empty() || x.ends_with(y.as_str()) || y.ends_with(x.as_str()))
            })
        }
    }
}

/// The compiled regexp, from a small per-thread cache: the claim index compares one regexp
/// with many hosts, and compiling is what costs. `None` when it does not compile here (then
/// the caller falls back to the suffix comparison, which is sound).
fn compile(re: &str) -> Option<regex_automata::meta::Regex> {
    use std::cell::RefCell;
    use std::collections::HashMap;
    const CACHED: usize = 256;
    thread_local! {
        static CACHE: RefCell<HashMap<String, Option<regex_automata::meta::Regex>>> = RefCell::new(HashMap::new());
    }
    if re.len() > super::MAX_RULE_LEN {
        return None;
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(hit) = cache.get(re) {
            return hit.clone();
        }
        let built = regex_automata::meta::Regex::builder()
            .syntax(regex_automata::util::syntax::Config::new().unicode(false).utf8(false))
            .build(re)
            .ok();
        if cache.len() >= CACHED {
            cache.clear();
        }
        cache.insert(re.to_string(), built.clone());
        built
    })
}

/// One literal suffix per top-level alternative of a regexp, lower case, when every
/// alternative is anchored at its end; `None` otherwise. A fully literal alternative
/// (`^web\.com$`) gives the host itself.
fn regexp_suffixes(re: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for alternative in split_alternatives(re) {
        let tokens = tokenize(alternative)?;
        let mut end = tokens.len();
        if !matches!(tokens.last(), Some(Token::End)) {
            return None;
        }
        while end > 0 && tokens[end - 1] == Token::End {
            end -= 1;
        }
        let mut suffix = Vec::new();
        let mut i = end;
        while i > 0 {
            match tokens[i - 1] {
                Token::Literal(c) => suffix.push(c),
                _ => break,
            }
            i -= 1;
        }
        suffix.reverse();
        let suffix: String = suffix.into_iter().collect::<String>().to_ascii_lowercase();
        if suffix.is_empty() {
            return None;
        }
        out.push(suffix);
    }
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A character matched literally (letters, digits, `-`, an escaped `.`).
    Literal(char),
    /// `$` or `\z`.
    End,
    /// Anything else: classes, groups, wildcards, assertions, quantified atoms.
    Other,
}

/// Splits at `|` outside groups and classes.
fn split_alternatives(re: &str) -> Vec<&str> {
    let b = re.as_bytes();
    let (mut depth, mut class, mut start, mut i) = (0usize, false, 0usize, 0usize);
    let mut out = Vec::new();
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !class => {
                class = true;
                // A `]` right after `[` or `[^` is literal.
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b'[' if class && b.get(i + 1) == Some(&b':') => {
                // A POSIX class `[:alpha:]` inside a class.
                if let Some(end) = re[i..].find(":]") {
                    i += end + 1;
                }
            }
            b']' if class => class = false,
            b'(' if !class => depth += 1,
            b')' if !class => depth = depth.saturating_sub(1),
            b'|' if !class && depth == 0 => {
                out.push(&re[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&re[start..]);
    out
}

/// The tokens of one alternative, enough to read its end. `None` for an unbalanced group or
/// class (the rule parser has refused those already; stay safe anyway).
fn tokenize(alt: &str) -> Option<Vec<Token>> {
    let chars: Vec<char> = alt.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let next = *chars.get(i + 1)?;
                out.push(match next {
                    '.' | '-' => Token::Literal(next),
                    'z' => Token::End,
                    _ => Token::Other,
                });
                i += 2;
                continue;
            }
            '$' => out.push(Token::End),
            '[' => {
                let mut j = i + 1;
                if chars.get(j) == Some(&'^') {
                    j += 1;
                }
                if chars.get(j) == Some(&']') {
                    j += 1;
                }
                while *chars.get(j)? != ']' {
                    if chars[j] == '\\' {
                        j += 1;
                    } else if chars[j] == '[' && chars.get(j + 1) == Some(&':') {
                        while !(chars.get(j)? == &':' && chars.get(j + 1) == Some(&']')) {
                            j += 1;
                        }
                        j += 1;
                    }
                    j += 1;
                }
                out.push(Token::Other);
                i = j;
            }
            '(' => {
                let mut depth = 0usize;
                let mut j = i;
                let mut class = false;
                loop {
                    match *chars.get(j)? {
                        '\\' => j += 1,
                        '[' if !class => class = true,
                        ']' if class => class = false,
                        '(' if !class => depth += 1,
                        ')' if !class => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                out.push(Token::Other);
                i = j;
            }
            '*' | '+' | '?' | '{' => {
                // A quantifier makes the atom before it non-literal.
                if let Some(last) = out.last_mut() {
                    *last = Token::Other;
                }
                if c == '{' {
                    while *chars.get(i)? != '}' {
                        i += 1;
                    }
                }
                out.push(Token::Other);
            }
            c if c.is_ascii_alphanumeric() || c == '-' => out.push(Token::Literal(c)),
            _ => out.push(Token::Other),
        }
        i += 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(h: &str) -> HostPattern {
        HostPattern::Exact(h.into())
    }

    #[test]
    fn hosts_are_normalised_as_traefik_compares_them() {
        assert_eq!(normalize("Web.LocalHost."), "web.localhost");
        assert_eq!(normalize("web.localhost.."), "web.localhost");
        assert_eq!(normalize("web.localhost:80"), "web.localhost");
        assert_eq!(normalize("[::1]:80"), "[::1]:80");
        assert_eq!(
            host_pattern("*.Example.com."),
            Some(HostPattern::Wildcard("example.com".into()))
        );
        assert_eq!(host_pattern("*"), None);
    }

    #[test]
    fn regexps_are_bounded_only_when_every_alternative_ends_in_a_domain() {
        for bounded in [
            r"^.+\.example\.com$",
            r"^[a-z]+\.localhost$",
            r"(?i)^(a|b)\.shop\.test$",
            r"^a\.test$|^b\.test$",
            r"\.example\.com\z",
        ] {
            assert!(regexp_pattern(bounded).is_some(), "{bounded}");
        }
        for unbounded in [
            ".+",
            r"^.+\.example\.com",
            r"example\.com$|.*",
            r"^.+\.example\.com?$",
            r"^.+\.example\.co(m)$",
            r"^.+\.example\.com{1}$",
            r"^.+$",
            r"^[a-z.]+$",
            r"^web$",
            "",
            r"^.+\.example\.com$|",
        ] {
            assert!(regexp_pattern(unbounded).is_none(), "{unbounded}");
        }
    }

    #[test]
    fn overlaps_follow_traefik_matching() {
        let re = |r: &str| regexp_pattern(r).unwrap();
        assert!(overlap(&exact("web.localhost"), &exact("web.localhost")));
        assert!(!overlap(&exact("web.localhost"), &exact("web2.localhost")));
        let w = host_pattern("*.localhost").unwrap();
        assert!(overlap(&exact("web.localhost"), &w));
        assert!(!overlap(&exact("a.web.localhost"), &w), "a wildcard covers one label");
        assert!(!overlap(&exact("localhost"), &w));
        assert!(overlap(&exact("web.localhost"), &re(r"^w.b\.localhost$")));
        assert!(!overlap(&exact("api.localhost"), &re(r"^w.b\.localhost$")));
        // Unanchored at the start: a longer host under the suffix matches.
        assert!(overlap(&exact("evilweb.localhost"), &re(r"web\.localhost$")));
        assert!(overlap(&re(r"^.+\.localhost$"), &re(r"^api\.localhost$")));
        assert!(!overlap(&re(r"^.+\.example\.com$"), &re(r"^.+\.example\.org$")));
        assert!(overlap(&w, &re(r"^.+\.localhost$")));
        // A request `web.localhost.` reaches Host(`web.localhost`); a regexp may take it.
        assert!(overlap(&exact("web.localhost"), &re(r"^web\.localhost\.$")));
    }

    #[test]
    fn allow_host_binds_every_form() {
        let allowed = vec!["*.example.com".to_string(), "shop.test".to_string()];
        assert!(exact("a.example.com").within(&allowed));
        assert!(exact("shop.test").within(&allowed));
        assert!(!exact("example.com").within(&allowed));
        assert!(host_pattern("*.example.com").unwrap().within(&allowed));
        assert!(host_pattern("*.a.example.com").unwrap().within(&allowed));
        assert!(!host_pattern("*.com").unwrap().within(&allowed));
        assert!(regexp_pattern(r"^.+\.example\.com$").unwrap().within(&allowed));
        assert!(!regexp_pattern(r"^.+example\.com$").unwrap().within(&allowed));
        assert!(!regexp_pattern(r"^.+\.evil\.com$").unwrap().within(&allowed));
    }
}
