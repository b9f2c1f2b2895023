//! Parsing and validation of Traefik v3 HTTP router rules.
//!
//! Pointsman writes router rules into Traefik's file-provider configuration.
//! Traefik only validates a rule when it loads that file, and a rule it
//! rejects does not fail loudly: the router is dropped with an error in
//! Traefik's log, and the release it was meant to route to serves 404s. The
//! only safe place to catch a bad rule is before pointsman writes it, so
//! every rule goes through [`Rule::parse`], which accepts a rule only if
//! Traefik would accept it too.
//!
//! # What Traefik does with a rule
//!
//! This module mirrors Traefik's own pipeline (checked against the v3 source,
//! `master` at v3.7.9, and against a running Traefik v3.7 by
//! `tests/rule_oracle.rs`, which loads the rules of the unit tests and
//! hundreds of generated ones and compares verdicts):
//!
//! 1. `pkg/rules/parser.go` hands the rule to `github.com/vulcand/predicate`,
//!    which parses it with Go's `go/parser.ParseExpr`: **a rule is a Go
//!    expression**. That is where the syntax comes from: string arguments are
//!    Go string literals, either raw (`` `...` ``, no escapes) or interpreted
//!    (`"..."`, with Go's escapes); `'...'` is a Go rune literal, which
//!    predicate refuses; `!` binds tighter than `&&`, which binds tighter than
//!    `||`; any other operator, unquoted or numeric argument, or nested call
//!    is refused.
//! 2. The same file registers each matcher under four spellings only: as
//!    written (`PathPrefix`), lower case (`pathprefix`), upper case
//!    (`PATHPREFIX`) and title case (`Pathprefix`). `pathPrefix` is unknown.
//! 3. `pkg/muxer/http/mux.go` (`addRule`) calls `rules.CheckRule`: a matcher
//!    needs at least one argument and **no argument may be empty**.
//! 4. `pkg/muxer/http/matcher.go` (`httpFuncs`) fixes each matcher's arity
//!    and checks its arguments: `Host` and `HostRegexp` refuse non-ASCII,
//!    `Path` and `PathPrefix` must start with `/`, regexps must compile under
//!    Go's `regexp` package, `ClientIP` must be an IP address or CIDR block.
//!
//! | matcher        | arguments                     | checked here                        |
//! |----------------|-------------------------------|-------------------------------------|
//! | `Host`         | host                          | ASCII only                          |
//! | `HostRegexp`   | regexp                        | ASCII only, RE2 syntax              |
//! | `Path`         | path                          | starts with `/`                     |
//! | `PathPrefix`   | path                          | starts with `/`                     |
//! | `PathRegexp`   | regexp                        | RE2 syntax                          |
//! | `Method`       | method                        | HTTP token (stricter, see below)    |
//! | `Header`       | name, value                   | -                                   |
//! | `HeaderRegexp` | name, regexp                  | RE2 syntax                          |
//! | `Query`        | key \[, value\]               | -                                   |
//! | `QueryRegexp`  | key \[, regexp\]              | RE2 syntax when the regexp is given |
//! | `ClientIP`     | IP or CIDR                    | parses as an IP address or CIDR     |
//!
//! # Where this module is stricter than Traefik
//!
//! Being stricter is safe (pointsman refuses to write the rule and says why);
//! being laxer is not. These rules are accepted by Traefik but refused here:
//!
//! - newlines and other control characters, tabs included, anywhere: a rule
//!   is one line of config, and Go's automatic semicolon insertion makes
//!   newlines inside a rule a trap anyway;
//! - `{{` and `}}` anywhere, even inside strings: Traefik runs every
//!   file-provider file through Go's `text/template` before parsing it;
//! - the noncharacters U+FFFE and U+FFFF: Traefik's rule parser takes them,
//!   but its YAML reader refuses them raw, and pointsman writes rules as
//!   they are (JSON, which escapes neither) into `.yml` files;
//! - rules longer than [`MAX_RULE_LEN`] bytes, and parentheses or negations
//!   nested more than 64 deep;
//! - Go comments (`/* */`, `//`) and the variadic spread ``Host(`a`...)``,
//!   which Go's parser allows and predicate silently ignores;
//! - `"..."` strings whose escapes decode to invalid UTF-8 (`"\xff"`);
//! - a `Method` argument that is not an HTTP token (Traefik accepts
//!   ``Method(`GET POST`)``, which can never match anything);
//! - in regexps: `\p{...}` names other than `Any`, the Unicode general
//!   categories and the Unicode 15 scripts spelled exactly as Go's tables
//!   spell them (Go 1.25, which builds every Traefik v3.7, also takes
//!   aliases such as `\p{Letter}` and loose spellings such as `\p{greek}`;
//!   Traefik v3.0 to v3.6 refuse them), groups nested more than 100 deep,
//!   and patterns whose length times their largest repetition product
//!   exceeds 200 000 (a cheap over-estimate of Go's "expression too large"
//!   limit, which is about 3.3 million compiled instructions).
//!
//! Not stricter, though it looks it: scripts whose names contain `_` or a
//! second capital (`\p{Old_Italic}`, `\p{SignWriting}`) are refused because
//! Go 1.25's loose lookup cannot find them, so Traefik v3.7 refuses them too.
//! A byte order mark is accepted only at the very start of a rule, and
//! Unicode spaces nowhere, as Go's parser has it.
//!
//! The regexp check is a syntax check of Go's RE2 dialect, written after
//! `regexp/syntax/parse.go`: groups and flags, named captures, character
//! classes (ranges, POSIX and Perl classes, `\p{..}`), escapes, repetition
//! operators and counts (including Go's rule that nested counted repetitions
//! may not multiply past 1000). It does not build or run an automaton.
//!
//! Accepted on purpose, because Traefik accepts them: a trailing comma in an
//! argument list (``Host(`a.com`,)``), spaces between a matcher and its `(`,
//! and ``Host(`*`)`` (a catch-all since Traefik v3.7).

pub mod hosts;
mod regexp;

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Longest rule [`Rule::parse`] accepts, in bytes (after trimming).
///
/// Traefik has no limit of its own, but a rule this long is a bug in
/// whatever generated it, and the limit keeps parsing cheap on hostile input.
pub const MAX_RULE_LEN: usize = 4096;

/// The characters Go's scanner skips between tokens.
const GO_WHITESPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// U+FEFF, which Go's scanner skips at the very start of its input and
/// refuses anywhere else, even inside a string.
const BYTE_ORDER_MARK: char = '\u{FEFF}';

/// Deepest nesting of parentheses and `!` accepted. The parser is recursive,
/// so this is what keeps a rule like `((((…` from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// A parsed, validated rule.
///
/// Holding a `Rule` means the text passed every check Traefik applies when it
/// loads a router (and a few stricter ones, see the module docs), so it is
/// safe to write into dynamic configuration as-is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    text: String,
    expr: Expr,
}

impl Rule {
    /// Parses and validates a Traefik v3 rule.
    ///
    /// Surrounding spaces, tabs and newlines (a trailing newline left by a
    /// YAML block scalar, say) are trimmed, and so is a byte order mark at the
    /// very start: Go's parser skips exactly these. What remains is what
    /// [`Rule::as_str`] returns and what pointsman writes. Other Unicode
    /// spaces are refused, also at the ends, as Traefik refuses them. Columns
    /// in errors count characters from 1 in `text` as given, before trimming.
    ///
    /// # Errors
    ///
    /// A [`RuleError`] saying what is wrong and where, for any rule Traefik
    /// would refuse (and for the stricter cases listed in the module docs).
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        let without_bom = text.strip_prefix(BYTE_ORDER_MARK).unwrap_or(text);
        let trimmed = without_bom.trim_matches(GO_WHITESPACE);
        if trimmed.is_empty() {
            return Err(RuleError::Empty);
        }
        if trimmed.len() > MAX_RULE_LEN {
            return Err(RuleError::TooLong {
                len: trimmed.len(),
                max: MAX_RULE_LEN,
            });
        }
        let leading = text.len() - without_bom.trim_start_matches(GO_WHITESPACE).len();
        let lead_chars = text[..leading].chars().count();
        check_characters(trimmed, lead_chars)?;
        let expr = Parser::new(trimmed, lead_chars).parse_rule()?;
        Ok(Rule {
            text: trimmed.to_owned(),
            expr,
        })
    }

    /// Lowercased host names named by `Host(...)` matchers anywhere in the
    /// rule (not `HostRegexp`), sorted, deduplicated.
    ///
    /// Like Traefik's own `ParseDomains`, this includes hosts under a negation
    /// and the literal `*`: it answers "which names does this rule mention",
    /// not "which names does it match".
    pub fn hosts(&self) -> Vec<String> {
        let mut hosts = Vec::new();
        self.expr.visit(false, &mut |matcher, _| {
            if matcher.kind == MatcherKind::Host {
                hosts.extend(matcher.args.first().map(|h| h.to_ascii_lowercase()));
            }
        });
        hosts.sort();
        hosts.dedup();
        hosts
    }

    /// Which hosts the rule can match, as Traefik matches them ([`hosts`]).
    pub fn footprint(&self) -> hosts::Footprint {
        self.expr.footprint()
    }

    /// A rule is a catch-all unless every host it can match is bounded by a `Host` (not `*`)
    /// or a `HostRegexp` anchored under a domain, through every `||` and never under a `!`.
    pub fn is_catch_all(&self) -> bool {
        !self.footprint().is_bounded()
    }

    /// The original text (trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Rule {
    type Err = RuleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Rule::parse(s)
    }
}

/// Builds a rule from the `host` label shorthand:
/// `"a.com,b.com"` becomes ``Host(`a.com`) || Host(`b.com`)``.
///
/// Entries are separated by commas; spaces around an entry are ignored and
/// repeated entries (compared case-insensitively) are kept once. Each entry
/// must be a plain DNS name: ASCII letters, digits and hyphens in dot-separated
/// labels. Wildcards (`*.a.com`) are refused because `Host` only understands
/// them from Traefik v3.7 on; use a `HostRegexp` rule instead. The stricter
/// check (Traefik itself accepts any ASCII in `Host`) exists because a typo in
/// a label would otherwise become a router that silently matches nothing.
///
/// # Errors
///
/// [`RuleError::EmptyHostList`] for an empty list, [`RuleError::InvalidHost`]
/// for the first bad entry, and [`RuleError::TooLong`] when the resulting rule
/// is over [`MAX_RULE_LEN`].
pub fn from_hosts(list: &str) -> Result<Rule, RuleError> {
    if list.trim().is_empty() {
        return Err(RuleError::EmptyHostList);
    }
    let mut hosts: Vec<&str> = Vec::new();
    for entry in list.split(',') {
        let host = entry.trim();
        check_host_name(host).map_err(|reason| RuleError::InvalidHost {
            host: host.to_owned(),
            reason,
        })?;
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            hosts.push(host);
        }
    }
    let text = hosts
        .iter()
        .map(|h| format!("Host(`{h}`)"))
        .collect::<Vec<_>>()
        .join(" || ");
    // Belt and braces: the generated text goes through the same validator
    // as hand-written rules (this is also where the length limit applies).
    Rule::parse(&text)
}

/// Why a rule was refused. Messages are meant for the operator who wrote the
/// label, so they name the problem, where it is, and the fix when obvious.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("rule is empty")]
    Empty,
    #[error("rule is {len} bytes long; pointsman accepts at most {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("rule contains a newline at column {column}")]
    Newline { column: usize },
    #[error("rule contains control character U+{code:04X} at column {column}")]
    ControlCharacter { column: usize, code: u32 },
    #[error("rule contains a byte order mark (U+FEFF) at column {column}; Traefik only allows one at the very start")]
    ByteOrderMark { column: usize },
    #[error(
        "rule contains U+{code:04X} at column {column}, which YAML files (Traefik's dynamic configuration) cannot hold"
    )]
    NotInYaml { column: usize, code: u32 },
    #[error("rule contains `{delimiter}` at column {column}: Traefik evaluates dynamic config as a Go template")]
    TemplateDelimiter { column: usize, delimiter: &'static str },
    #[error("unexpected character `{found}` at column {column}{hint}")]
    UnexpectedCharacter {
        column: usize,
        found: char,
        /// Empty, or `": "` followed by advice.
        hint: &'static str,
    },
    #[error("unterminated string starting at column {column}")]
    UnterminatedString { column: usize },
    #[error("invalid escape sequence `{sequence}` at column {column}")]
    InvalidEscape { column: usize, sequence: String },
    #[error(
        "string at column {column} decodes to invalid UTF-8; write non-ASCII characters as themselves or as \\u escapes"
    )]
    InvalidUtf8 { column: usize },
    #[error("unbalanced parenthesis at column {column}")]
    UnbalancedParenthesis { column: usize },
    #[error("missing operand after `{operator}` at column {column}")]
    MissingOperand { column: usize, operator: &'static str },
    #[error("expected {expected} at column {column}, found {found}")]
    UnexpectedToken {
        column: usize,
        expected: &'static str,
        found: String,
    },
    #[error("unknown matcher `{name}` at column {column}{}", did_you_mean(*.suggestion))]
    UnknownMatcher {
        column: usize,
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("{matcher} at column {column} must be followed by its arguments, e.g. {matcher}(`...`)")]
    MissingArguments { column: usize, matcher: &'static str },
    #[error("argument at column {column} must be a quoted string, e.g. Host(`example.com`) or Host(\"example.com\")")]
    UnquotedArgument { column: usize },
    #[error("{matcher} takes {expected}, got {got} (matcher at column {column})")]
    WrongArity {
        column: usize,
        matcher: &'static str,
        expected: &'static str,
        got: usize,
    },
    #[error("{matcher} argument at column {column} is empty; Traefik rejects empty arguments")]
    EmptyArgument { column: usize, matcher: &'static str },
    #[error("invalid {matcher} argument at column {column}: {reason}")]
    InvalidArgument {
        column: usize,
        matcher: &'static str,
        reason: String,
    },
    #[error("parentheses and negations nest more than {max} levels deep at column {column}")]
    TooDeep { column: usize, max: usize },
    #[error("host list is empty")]
    EmptyHostList,
    #[error("invalid host `{host}` in host list: {reason}")]
    InvalidHost { host: String, reason: String },
}

fn did_you_mean(suggestion: Option<&'static str>) -> String {
    suggestion.map(|s| format!(" (did you mean {s}?)")).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Syntax tree
// ---------------------------------------------------------------------------

/// The parsed rule. `&&` and `||` chains are kept flat (n-ary) so that a
/// long chain does not turn into a deep tree: only parentheses and `!` add
/// depth, and those are bounded by [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    Matcher(Matcher),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn footprint(&self) -> hosts::Footprint {
        use hosts::Footprint;
        match self {
            Expr::Matcher(m) => {
                let arg = m.args.first().map(String::as_str).unwrap_or_default();
                let pattern = match m.kind {
                    MatcherKind::Host => hosts::host_pattern(arg),
                    MatcherKind::HostRegexp => hosts::regexp_pattern(arg),
                    _ => None,
                };
                pattern.map_or(Footprint::Unbounded, |p| Footprint::Hosts(vec![p]))
            }
            // `!Host(`a`)` matches every other host.
            Expr::Not(_) => Footprint::Unbounded,
            // Matches only what every operand matches: any bounded operand bounds it. The one
            // with the fewest patterns is the tightest bound.
            Expr::And(operands) => operands
                .iter()
                .map(Expr::footprint)
                .filter(Footprint::is_bounded)
                .min_by_key(|f| f.patterns().len())
                .unwrap_or(Footprint::Unbounded),
            Expr::Or(operands) => {
                let mut all = Vec::new();
                for operand in operands {
                    match operand.footprint() {
                        Footprint::Hosts(p) => all.extend(p),
                        Footprint::Unbounded => return Footprint::Unbounded,
                    }
                }
                all.sort();
                all.dedup();
                Footprint::Hosts(all)
            }
        }
    }

    /// Calls `f` on every matcher, with whether any `!` is above it.
    fn visit(&self, negated: bool, f: &mut impl FnMut(&Matcher, bool)) {
        match self {
            Expr::Matcher(m) => f(m, negated),
            Expr::Not(inner) => inner.visit(true, f),
            Expr::And(operands) | Expr::Or(operands) => {
                for operand in operands {
                    operand.visit(negated, f);
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Matcher {
    kind: MatcherKind,
    /// Decoded argument values (quotes removed, escapes applied).
    args: Vec<String>,
}

/// The Traefik v3 HTTP matchers, from `httpFuncs` in
/// `pkg/muxer/http/matcher.go`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MatcherKind {
    Host,
    HostRegexp,
    Path,
    PathPrefix,
    PathRegexp,
    Method,
    Header,
    HeaderRegexp,
    Query,
    QueryRegexp,
    ClientIp,
}

impl MatcherKind {
    const ALL: [MatcherKind; 11] = [
        MatcherKind::Host,
        MatcherKind::HostRegexp,
        MatcherKind::Path,
        MatcherKind::PathPrefix,
        MatcherKind::PathRegexp,
        MatcherKind::Method,
        MatcherKind::Header,
        MatcherKind::HeaderRegexp,
        MatcherKind::Query,
        MatcherKind::QueryRegexp,
        MatcherKind::ClientIp,
    ];

    fn name(self) -> &'static str {
        match self {
            MatcherKind::Host => "Host",
            MatcherKind::HostRegexp => "HostRegexp",
            MatcherKind::Path => "Path",
            MatcherKind::PathPrefix => "PathPrefix",
            MatcherKind::PathRegexp => "PathRegexp",
            MatcherKind::Method => "Method",
            MatcherKind::Header => "Header",
            MatcherKind::HeaderRegexp => "HeaderRegexp",
            MatcherKind::Query => "Query",
            MatcherKind::QueryRegexp => "QueryRegexp",
            MatcherKind::ClientIp => "ClientIP",
        }
    }

    /// Allowed argument counts, inclusive, as in `expectNParameters(...)`.
    fn arity(self) -> (usize, usize) {
        match self {
            MatcherKind::Header | MatcherKind::HeaderRegexp => (2, 2),
            MatcherKind::Query | MatcherKind::QueryRegexp => (1, 2),
            _ => (1, 1),
        }
    }

    fn arity_text(self) -> &'static str {
        match self.arity() {
            (2, 2) => "exactly 2 arguments",
            (1, 2) => "1 or 2 arguments",
            _ => "exactly 1 argument",
        }
    }

    /// Finds a matcher by one of the four spellings Traefik registers
    /// (`rules.NewParser`): as written, lower, UPPER, and Title case, where
    /// Title case is `cases.Title` of the lower-case name (`Hostregexp`).
    fn lookup(spelling: &str) -> Option<MatcherKind> {
        MatcherKind::ALL.into_iter().find(|kind| {
            let name = kind.name();
            let lower = name.to_ascii_lowercase();
            let mut title = lower.clone();
            title[..1].make_ascii_uppercase();
            spelling == name || spelling == lower || spelling == name.to_ascii_uppercase() || spelling == title
        })
    }

    /// A guess at what an unknown matcher name was meant to be.
    fn suggest(spelling: &str) -> Option<&'static str> {
        // Traefik v2 names that v3 renamed or never had for HTTP.
        const RENAMED: [(&str, MatcherKind); 4] = [
            ("headers", MatcherKind::Header),
            ("headersregexp", MatcherKind::HeaderRegexp),
            ("hostheader", MatcherKind::Host),
            ("hostsni", MatcherKind::Host),
        ];
        let lower = spelling.to_lowercase();
        if let Some(kind) = MatcherKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(&lower))
        {
            return Some(kind.name());
        }
        if let Some((_, kind)) = RENAMED.iter().find(|(old, _)| *old == lower) {
            return Some(kind.name());
        }
        if lower.chars().count() > 24 {
            return None;
        }
        MatcherKind::ALL
            .into_iter()
            .map(|k| (edit_distance(&lower, &k.name().to_ascii_lowercase()), k))
            .filter(|(distance, _)| *distance <= 2)
            .min_by_key(|(distance, _)| *distance)
            .map(|(_, k)| k.name())
    }
}

/// Levenshtein distance, for "did you mean" suggestions on short names.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

// ---------------------------------------------------------------------------
// Whole-text checks
// ---------------------------------------------------------------------------

/// Checks that are about the text as a whole rather than its grammar: they
/// run before tokenizing so that, for example, a `{{` inside a string is
/// still caught.
fn check_characters(text: &str, lead_chars: usize) -> Result<(), RuleError> {
    for (index, c) in text.chars().enumerate() {
        let column = lead_chars + index + 1;
        if matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}') {
            return Err(RuleError::Newline { column });
        }
        if c.is_control() {
            return Err(RuleError::ControlCharacter {
                column,
                code: u32::from(c),
            });
        }
        if c == BYTE_ORDER_MARK {
            return Err(RuleError::ByteOrderMark { column });
        }
        // The only characters left that YAML refuses raw; pointsman writes
        // rules unescaped, and one of these makes Traefik reject the whole
        // file ("control characters are not allowed").
        if matches!(c, '\u{FFFE}' | '\u{FFFF}') {
            return Err(RuleError::NotInYaml {
                column,
                code: u32::from(c),
            });
        }
    }
    let first = ["{{", "}}"]
        .into_iter()
        .filter_map(|delimiter| text.find(delimiter).map(|at| (at, delimiter)))
        .min();
    if let Some((at, delimiter)) = first {
        return Err(RuleError::TemplateDelimiter {
            column: lead_chars + text[..at].chars().count() + 1,
            delimiter,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenKind {
    /// A bare word: a matcher name where one is expected, otherwise an error.
    Word(String),
    /// A string literal, already decoded.
    Str(String),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    Eof,
}

impl TokenKind {
    /// How the token is named in "expected X, found Y" errors.
    fn describe(&self) -> String {
        match self {
            TokenKind::Word(word) => format!("`{word}`"),
            TokenKind::Str(_) => "a quoted string".to_owned(),
            TokenKind::LParen => "`(`".to_owned(),
            TokenKind::RParen => "`)`".to_owned(),
            TokenKind::Comma => "`,`".to_owned(),
            TokenKind::And => "`&&`".to_owned(),
            TokenKind::Or => "`||`".to_owned(),
            TokenKind::Not => "`!`".to_owned(),
            TokenKind::Eof => "the end of the rule".to_owned(),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    column: usize,
}

/// Turns the rule into tokens on demand, so that an error is always the
/// leftmost one (`Host(a.com)` reports the unquoted `a`, not the `.`).
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    /// Characters trimmed off the front, so columns refer to the input.
    lead_chars: usize,
}

impl Lexer {
    fn column(&self, pos: usize) -> usize {
        self.lead_chars + pos + 1
    }

    fn next_token(&mut self) -> Result<Token, RuleError> {
        // Only the space is whitespace here: tabs and newlines were refused
        // by `check_characters`, and Go would refuse other Unicode spaces.
        while self.chars.get(self.pos) == Some(&' ') {
            self.pos += 1;
        }
        let start = self.pos;
        let column = self.column(start);
        let Some(&c) = self.chars.get(start) else {
            return Ok(Token {
                kind: TokenKind::Eof,
                column,
            });
        };
        let next = self.chars.get(start + 1).copied();
        let kind = match c {
            '(' => self.single(TokenKind::LParen),
            ')' => self.single(TokenKind::RParen),
            ',' => self.single(TokenKind::Comma),
            '!' => self.single(TokenKind::Not),
            '&' if next == Some('&') => self.double(TokenKind::And),
            '|' if next == Some('|') => self.double(TokenKind::Or),
            '`' => self.raw_string()?,
            '"' => self.interpreted_string()?,
            c if is_word_char(c) => {
                let end = (start..self.chars.len())
                    .find(|&i| !is_word_char(self.chars[i]))
                    .unwrap_or(self.chars.len());
                self.pos = end;
                TokenKind::Word(self.chars[start..end].iter().collect())
            }
            found => {
                let hint = match found {
                    '&' => ": did you mean `&&`?",
                    '|' => ": did you mean `||`?",
                    '\'' => ": single quotes are not allowed; quote arguments with backticks or double quotes",
                    '/' => ": comments are not allowed in rules",
                    '=' | '<' | '>' => ": rules combine matchers with `&&`, `||` and `!` only",
                    c if c.is_whitespace() => ": a Unicode space; only ASCII spaces may separate the parts of a rule",
                    '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' => ": an invisible formatting character",
                    _ => "",
                };
                return Err(RuleError::UnexpectedCharacter { column, found, hint });
            }
        };
        Ok(Token { kind, column })
    }

    fn single(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 1;
        kind
    }

    fn double(&mut self, kind: TokenKind) -> TokenKind {
        self.pos += 2;
        kind
    }

    /// A Go raw string: everything up to the next backtick, no escapes.
    fn raw_string(&mut self) -> Result<TokenKind, RuleError> {
        let start = self.pos;
        let end =
            (start + 1..self.chars.len())
                .find(|&i| self.chars[i] == '`')
                .ok_or(RuleError::UnterminatedString {
                    column: self.column(start),
                })?;
        self.pos = end + 1;
        Ok(TokenKind::Str(self.chars[start + 1..end].iter().collect()))
    }

    /// A Go interpreted string, with Go's escapes: `\a \b \f \n \r \t \v \\
    /// \"`, `\NNN` (octal, at most 255), `\xHH`, `\uHHHH`, `\UHHHHHHHH` (a
    /// valid code point). `\'` is only valid in rune literals, so it is
    /// refused, as Go does. Octal and hex escapes produce bytes, so the result
    /// is checked to be UTF-8 at the end.
    fn interpreted_string(&mut self) -> Result<TokenKind, RuleError> {
        let start = self.pos;
        let column = self.column(start);
        let mut bytes = Vec::new();
        let mut i = start + 1;
        loop {
            let Some(&c) = self.chars.get(i) else {
                return Err(RuleError::UnterminatedString { column });
            };
            match c {
                '"' => break,
                '\\' => i = self.escape(i, column, &mut bytes)?,
                c => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += 1;
                }
            }
        }
        self.pos = i + 1;
        String::from_utf8(bytes)
            .map(TokenKind::Str)
            .map_err(|_| RuleError::InvalidUtf8 { column })
    }

    /// Decodes the escape starting at the backslash at `at`, appending its
    /// bytes; returns the index just past it.
    fn escape(&self, at: usize, string_column: usize, out: &mut Vec<u8>) -> Result<usize, RuleError> {
        let Some(&kind) = self.chars.get(at + 1) else {
            return Err(RuleError::UnterminatedString { column: string_column });
        };
        let simple = match kind {
            'a' => Some(0x07),
            'b' => Some(0x08),
            'f' => Some(0x0c),
            'n' => Some(b'\n'),
            'r' => Some(b'\r'),
            't' => Some(b'\t'),
            'v' => Some(0x0b),
            '\\' => Some(b'\\'),
            '"' => Some(b'"'),
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            return Ok(at + 2);
        }
        let (first_digit, digits, radix) = match kind {
            '0'..='7' => (at + 1, 3, 8),
            'x' => (at + 2, 2, 16),
            'u' => (at + 2, 4, 16),
            'U' => (at + 2, 8, 16),
            _ => return Err(self.invalid_escape(at, at + 2)),
        };
        let mut value: u32 = 0;
        for i in first_digit..first_digit + digits {
            match self.chars.get(i) {
                None => {
                    return Err(RuleError::UnterminatedString { column: string_column });
                }
                Some(d) => match d.to_digit(radix) {
                    Some(v) => value = value * radix + v,
                    None => return Err(self.invalid_escape(at, i + 1)),
                },
            }
        }
        let end = first_digit + digits;
        match kind {
            'u' | 'U' => {
                let c = char::from_u32(value).ok_or_else(|| self.invalid_escape(at, end))?;
                let mut buf = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            _ => {
                let byte = u8::try_from(value).map_err(|_| self.invalid_escape(at, end))?;
                out.push(byte);
            }
        }
        Ok(end)
    }

    fn invalid_escape(&self, start: usize, end: usize) -> RuleError {
        let end = end.min(self.chars.len());
        RuleError::InvalidEscape {
            column: self.column(start),
            sequence: self.chars[start..end].iter().collect(),
        }
    }
}

/// Characters of a bare word. Broader than a Go identifier on purpose: any
/// word that is not a matcher name is an error anyway, and a longer word
/// makes for a clearer "unknown matcher" message.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

// ---------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------

/// Recursive descent over Go's precedence for the three operators Traefik
/// supports:
///
/// ```text
/// rule    = or EOF
/// or      = and { "||" and }
/// and     = unary { "&&" unary }
/// unary   = "!" unary | primary
/// primary = "(" or ")" | NAME "(" [ STRING { "," STRING } [ "," ] ] ")"
/// ```
struct Parser {
    lexer: Lexer,
    peeked: Option<Token>,
    depth: usize,
}

impl Parser {
    fn new(text: &str, lead_chars: usize) -> Parser {
        Parser {
            lexer: Lexer {
                chars: text.chars().collect(),
                pos: 0,
                lead_chars,
            },
            peeked: None,
            depth: 0,
        }
    }

    fn peek(&mut self) -> Result<&Token, RuleError> {
        let token = match self.peeked.take() {
            Some(token) => token,
            None => self.lexer.next_token()?,
        };
        Ok(self.peeked.insert(token))
    }

    fn next(&mut self) -> Result<Token, RuleError> {
        match self.peeked.take() {
            Some(token) => Ok(token),
            None => self.lexer.next_token(),
        }
    }

    fn parse_rule(&mut self) -> Result<Expr, RuleError> {
        let expr = self.parse_or()?;
        let token = self.next()?;
        match token.kind {
            TokenKind::Eof => Ok(expr),
            TokenKind::RParen => Err(RuleError::UnbalancedParenthesis { column: token.column }),
            other => Err(RuleError::UnexpectedToken {
                column: token.column,
                expected: "`&&` or `||`",
                found: other.describe(),
            }),
        }
    }

    fn parse_or(&mut self) -> Result<Expr, RuleError> {
        let first = self.parse_and()?;
        let mut operands = Vec::new();
        while self.peek()?.kind == TokenKind::Or {
            let operator = self.next()?;
            self.expect_operand("||", operator.column)?;
            operands.push(self.parse_and()?);
        }
        Ok(if operands.is_empty() {
            first
        } else {
            operands.insert(0, first);
            Expr::Or(operands)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, RuleError> {
        let first = self.parse_unary()?;
        let mut operands = Vec::new();
        while self.peek()?.kind == TokenKind::And {
            let operator = self.next()?;
            self.expect_operand("&&", operator.column)?;
            operands.push(self.parse_unary()?);
        }
        Ok(if operands.is_empty() {
            first
        } else {
            operands.insert(0, first);
            Expr::And(operands)
        })
    }

    fn parse_unary(&mut self) -> Result<Expr, RuleError> {
        if self.peek()?.kind != TokenKind::Not {
            return self.parse_primary();
        }
        let operator = self.next()?;
        self.enter(operator.column)?;
        self.expect_operand("!", operator.column)?;
        let inner = self.parse_unary()?;
        self.depth -= 1;
        Ok(Expr::Not(Box::new(inner)))
    }

    fn parse_primary(&mut self) -> Result<Expr, RuleError> {
        let token = self.next()?;
        match token.kind {
            TokenKind::LParen => {
                self.enter(token.column)?;
                match self.peek()?.kind {
                    TokenKind::Eof => {
                        return Err(RuleError::UnbalancedParenthesis { column: token.column });
                    }
                    TokenKind::RParen => {
                        let close = self.next()?;
                        return Err(RuleError::UnexpectedToken {
                            column: close.column,
                            expected: "a matcher inside the parentheses",
                            found: close.kind.describe(),
                        });
                    }
                    _ => {}
                }
                let inner = self.parse_or()?;
                let close = self.next()?;
                match close.kind {
                    TokenKind::RParen => {
                        self.depth -= 1;
                        Ok(inner)
                    }
                    TokenKind::Eof => Err(RuleError::UnbalancedParenthesis { column: token.column }),
                    other => Err(RuleError::UnexpectedToken {
                        column: close.column,
                        expected: "`&&`, `||` or `)`",
                        found: other.describe(),
                    }),
                }
            }
            TokenKind::Word(name) => self.parse_matcher(&name, token.column),
            TokenKind::RParen => Err(RuleError::UnbalancedParenthesis { column: token.column }),
            other => Err(RuleError::UnexpectedToken {
                column: token.column,
                expected: "a matcher such as Host(`example.com`), `!` or `(`",
                found: other.describe(),
            }),
        }
    }

    /// After `&&`, `||` or `!`: turns "nothing follows" into an error that
    /// points at the dangling operator rather than at what follows it.
    fn expect_operand(&mut self, operator: &'static str, column: usize) -> Result<(), RuleError> {
        match self.peek()?.kind {
            TokenKind::Eof | TokenKind::RParen | TokenKind::And | TokenKind::Or | TokenKind::Comma => {
                Err(RuleError::MissingOperand { column, operator })
            }
            _ => Ok(()),
        }
    }

    fn enter(&mut self, column: usize) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(RuleError::TooDeep { column, max: MAX_DEPTH });
        }
        Ok(())
    }

    fn parse_matcher(&mut self, name: &str, column: usize) -> Result<Expr, RuleError> {
        let kind = MatcherKind::lookup(name).ok_or_else(|| RuleError::UnknownMatcher {
            column,
            name: name.to_owned(),
            suggestion: MatcherKind::suggest(name),
        })?;
        let open = self.next()?;
        if open.kind != TokenKind::LParen {
            return Err(RuleError::MissingArguments {
                column,
                matcher: kind.name(),
            });
        }
        let mut args: Vec<(String, usize)> = Vec::new();
        loop {
            let token = self.next()?;
            match token.kind {
                TokenKind::RParen => break,
                TokenKind::Str(value) => {
                    args.push((value, token.column));
                    let separator = self.next()?;
                    match separator.kind {
                        TokenKind::Comma => {} // another argument, or `)` after a trailing comma
                        TokenKind::RParen => break,
                        TokenKind::Eof => {
                            return Err(RuleError::UnbalancedParenthesis { column: open.column });
                        }
                        other => {
                            return Err(RuleError::UnexpectedToken {
                                column: separator.column,
                                expected: "`,` or `)`",
                                found: other.describe(),
                            });
                        }
                    }
                }
                TokenKind::Word(_) => {
                    return Err(RuleError::UnquotedArgument { column: token.column });
                }
                TokenKind::Eof => {
                    return Err(RuleError::UnbalancedParenthesis { column: open.column });
                }
                other => {
                    return Err(RuleError::UnexpectedToken {
                        column: token.column,
                        expected: "a quoted string argument",
                        found: other.describe(),
                    });
                }
            }
        }
        validate_matcher(kind, &args, column)?;
        Ok(Expr::Matcher(Matcher {
            kind,
            args: args.into_iter().map(|(value, _)| value).collect(),
        }))
    }
}

// ---------------------------------------------------------------------------
// Argument validation
// ---------------------------------------------------------------------------

/// The checks Traefik makes when it builds the matcher: arity
/// (`expectNParameters`), no empty argument (`rules.CheckRule`), then the
/// matcher's own checks in `pkg/muxer/http/matcher.go`.
fn validate_matcher(kind: MatcherKind, args: &[(String, usize)], column: usize) -> Result<(), RuleError> {
    let (min, max) = kind.arity();
    if args.len() < min || args.len() > max {
        return Err(RuleError::WrongArity {
            column,
            matcher: kind.name(),
            expected: kind.arity_text(),
            got: args.len(),
        });
    }
    if let Some((_, column)) = args.iter().find(|(value, _)| value.is_empty()) {
        return Err(RuleError::EmptyArgument {
            column: *column,
            matcher: kind.name(),
        });
    }
    let check = |index: usize, result: Result<(), String>| {
        result.map_err(|reason| RuleError::InvalidArgument {
            column: args.get(index).map_or(column, |(_, c)| *c),
            matcher: kind.name(),
            reason,
        })
    };
    let value = |index: usize| args.get(index).map_or("", |(v, _)| v.as_str());
    match kind {
        MatcherKind::Host => check(0, ascii_only(value(0))),
        MatcherKind::HostRegexp => check(0, ascii_only(value(0)).and_then(|()| regexp(value(0)))),
        MatcherKind::Path | MatcherKind::PathPrefix => check(0, starts_with_slash(value(0))),
        MatcherKind::PathRegexp => check(0, regexp(value(0))),
        MatcherKind::Method => check(0, http_token(value(0))),
        MatcherKind::Header | MatcherKind::Query => Ok(()),
        MatcherKind::HeaderRegexp => check(1, regexp(value(1))),
        MatcherKind::QueryRegexp if args.len() == 2 => check(1, regexp(value(1))),
        MatcherKind::QueryRegexp => Ok(()),
        MatcherKind::ClientIp => check(0, ip_or_cidr(value(0))),
    }
}

fn ascii_only(value: &str) -> Result<(), String> {
    if value.is_ascii() {
        Ok(())
    } else {
        Err("non-ASCII characters are not allowed; use the punycode (xn--) form of the name".to_owned())
    }
}

fn starts_with_slash(value: &str) -> Result<(), String> {
    if value.starts_with('/') {
        Ok(())
    } else {
        Err(format!("path `{value}` does not start with `/`"))
    }
}

fn regexp(value: &str) -> Result<(), String> {
    regexp::check(value).map_err(|reason| format!("{reason} (Go regexp syntax)"))
}

/// Stricter than Traefik, which upper-cases any string: a method that is not
/// an HTTP token (RFC 9110 `tchar`s) can never match a request.
fn http_token(value: &str) -> Result<(), String> {
    let is_tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if value.chars().all(is_tchar) {
        Ok(())
    } else {
        Err(format!("`{value}` is not an HTTP method"))
    }
}

/// Traefik builds an `ip.Checker`: `net.ParseIP`, else `net.ParseCIDR`.
/// Both refuse IPv4 octets with leading zeros and IPv6 zones, as Rust's
/// parser does; the prefix length is decimal digits, leading zeros allowed
/// (`/008`), at most 32 or 128.
fn ip_or_cidr(value: &str) -> Result<(), String> {
    if value.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let invalid = || Err(format!("`{value}` is neither an IP address nor a CIDR block"));
    let Some((address, bits)) = value.split_once('/') else {
        return invalid();
    };
    let Ok(address) = address.parse::<IpAddr>() else {
        return invalid();
    };
    let max_bits = if address.is_ipv4() { 32 } else { 128 };
    let valid_bits = !bits.is_empty()
        && bits.bytes().all(|b| b.is_ascii_digit())
        && bits.parse::<u32>().is_ok_and(|n| n <= max_bits);
    if valid_bits { Ok(()) } else { invalid() }
}

/// Validates one entry of the `host` shorthand; the error is the reason.
fn check_host_name(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("empty entry (look for a stray comma)".to_owned());
    }
    if host.starts_with("*.") || host == "*" {
        return Err("wildcards are not supported here; write a HostRegexp rule instead".to_owned());
    }
    if let Some(c) = host
        .chars()
        .find(|c| !c.is_ascii_alphanumeric() && !matches!(c, '-' | '.'))
    {
        return Err(match c {
            c if c.is_whitespace() => "contains whitespace".to_owned(),
            '`' | '"' | '\'' => "contains a quote character".to_owned(),
            c if !c.is_ascii() => "contains non-ASCII characters; use the punycode (xn--) form".to_owned(),
            c => format!("contains `{c}`, which is not allowed in a DNS name"),
        });
    }
    if host.len() > 253 {
        return Err("is longer than 253 characters".to_owned());
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("has an empty label (leading, trailing or doubled dot)".to_owned());
        }
        if label.len() > 63 {
            return Err(format!("label `{label}` is longer than 63 characters"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label `{label}` starts or ends with a hyphen"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case of `fixtures/rules/table.json`.
    #[derive(serde::Deserialize)]
    struct Case {
        rule: String,
        /// Absent: the rule is valid. Present: it is refused with an error
        /// whose message contains this text.
        error: Option<String>,
    }

    #[derive(serde::Deserialize)]
    struct Table {
        cases: Vec<Case>,
    }

    /// The table lives in a data file because `tests/rule_oracle.rs` loads the
    /// same rules into a real Traefik, to check these verdicts against its own.
    fn table_cases() -> Vec<Case> {
        let table: Table = serde_json::from_str(include_str!("../../../fixtures/rules/table.json"))
            .expect("fixtures/rules/table.json is not a valid rule table");
        table.cases
    }

    #[test]
    fn table() {
        let cases = table_cases();
        assert!(cases.len() >= 40);
        for Case { rule, error: expected } in &cases {
            let result = Rule::parse(rule);
            match (expected, &result) {
                (None, Ok(parsed)) => assert_eq!(parsed.as_str(), rule.trim()),
                (Some(text), Err(error)) => {
                    let message = error.to_string();
                    assert!(
                        message.contains(text.as_str()),
                        "{rule:?}: expected error containing {text:?}, got {message:?}"
                    );
                }
                _ => panic!("{rule:?}: expected {expected:?}, got {result:?}"),
            }
        }
    }

    /// Go's scanner skips a byte order mark at the very start of a rule, and
    /// Traefik enabled such a router; pointsman used to refuse it.
    #[test]
    fn leading_byte_order_mark_is_trimmed_like_whitespace() {
        let rule = Rule::parse("\u{feff} Host(`a.com`)\t").unwrap();
        assert_eq!(rule.as_str(), "Host(`a.com`)");
        assert_eq!(
            Rule::parse("\u{feff}\u{feff}Host(`a.com`)"),
            Err(RuleError::ByteOrderMark { column: 2 })
        );
    }

    /// Only what Go skips is trimmed: a rule ending in a no-break space used
    /// to be accepted (and written trimmed), although Traefik refuses it.
    #[test]
    fn unicode_spaces_at_the_ends_are_refused() {
        for (rule, column) in [("Host(`a`)\u{a0}", 10), ("\u{2003}Host(`a`)", 1)] {
            assert!(
                matches!(Rule::parse(rule), Err(RuleError::UnexpectedCharacter { column: c, .. }) if c == column),
                "{rule:?}: {:?}",
                Rule::parse(rule)
            );
        }
    }

    /// Traefik runs every file-provider file through Go's `text/template`, so
    /// a `{{` anywhere would be evaluated, or break the whole file. The
    /// oracle test keeps such rules out of Traefik, so this is where their
    /// refusal is checked.
    #[test]
    fn template_delimiters_are_refused_anywhere() {
        for (rule, column) in [
            ("Host(`{{.Domain}}`)", 7),
            ("Host(\"a{{b\")", 8),
            ("PathRegexp(`^/a{{2}}`)", 16),
            ("Path(`/`) {{ && Path(`/`)", 11),
            ("{{", 1),
        ] {
            assert_eq!(
                Rule::parse(rule),
                Err(RuleError::TemplateDelimiter {
                    column,
                    delimiter: "{{"
                }),
                "{rule}"
            );
        }
    }

    #[test]
    fn precedence_follows_go() {
        // `&&` binds tighter than `||`, `!` tighter than both.
        let rule = Rule::parse("!Host(`a`) || Path(`/b`) && Method(`GET`)").unwrap();
        let Expr::Or(operands) = &rule.expr else {
            panic!("expected ||, got {:?}", rule.expr)
        };
        assert!(matches!(operands[0], Expr::Not(_)));
        assert!(matches!(&operands[1], Expr::And(inner) if inner.len() == 2));
    }

    #[test]
    fn string_values_are_decoded() {
        let rule = Rule::parse(r#"Header("X-A", "a\"b\u00e9\x41\101\\") && Path(`/raw\n`)"#).unwrap();
        let mut values = Vec::new();
        rule.expr.visit(false, &mut |m, _| values.extend(m.args.clone()));
        assert_eq!(values, ["X-A", "a\"béAA\\", "/raw\\n"]);
    }

    #[test]
    fn hosts_are_lowercased_sorted_and_deduplicated() {
        let rule = Rule::parse("Host(`B.com`) || (Host(`a.com`) && !Host(`b.COM`)) || HostRegexp(`c\\.com`)").unwrap();
        assert_eq!(rule.hosts(), ["a.com", "b.com"]);
        assert!(Rule::parse("PathPrefix(`/`)").unwrap().hosts().is_empty());
    }

    #[test]
    fn catch_alls_are_judged_by_what_the_rule_can_match() {
        // true: bounded by a host in every branch, never under a negation.
        let cases = [
            ("Host(`a.com`)", true),
            ("Host(`a.com.`)", true),
            ("HostRegexp(`.+`)", false),
            ("HostRegexp(`.+`) && Path(`/x`)", false),
            ("HostRegexp(`^.+\\.a\\.com$`)", true),
            ("HostRegexp(`^.+\\.a\\.com`)", false),
            ("HostRegexp(`a\\.com$|.*`)", false),
            ("Host(`a.com`) || PathPrefix(`/`)", false),
            ("(Host(`a.com`) || PathPrefix(`/`)) && Host(`b.com`)", true),
            ("Host(`a.com`) || (Path(`/x`) && Host(`b.com`))", true),
            ("PathPrefix(`/`)", false),
            ("!Host(`a.com`)", false),
            ("!Host(`a.com`) && Path(`/x`)", false),
            ("!!Host(`a.com`)", false),
            ("!(!Host(`a.com`) && Path(`/x`))", false),
            ("!Path(`/x`) && Host(`a.com`)", true),
            ("!(Host(`a.com`) || HostRegexp(`b`))", false),
            ("Host(`*`)", false),
            ("Host(`*`) && Path(`/x`)", false),
            ("Host(`*.a.com`)", true),
        ];
        for (rule, bounded) in cases {
            assert_eq!(!Rule::parse(rule).unwrap().is_catch_all(), bounded, "{rule}");
        }
    }

    #[test]
    fn columns_count_characters_of_the_untrimmed_input() {
        assert_eq!(
            Rule::parse("  Path(`/é`) &&"),
            Err(RuleError::MissingOperand {
                column: 14,
                operator: "&&"
            })
        );
        assert_eq!(
            Rule::parse("Path(`/ü`) Host"),
            Err(RuleError::UnexpectedToken {
                column: 12,
                expected: "`&&` or `||`",
                found: "`Host`".to_owned()
            })
        );
    }

    #[test]
    fn length_is_limited() {
        let long = format!("Path(`/{}`)", "a".repeat(MAX_RULE_LEN));
        assert_eq!(
            Rule::parse(&long),
            Err(RuleError::TooLong {
                len: long.len(),
                max: MAX_RULE_LEN
            })
        );
        let exact = format!("Path(`/{}`)", "a".repeat(MAX_RULE_LEN - 9));
        assert_eq!(exact.len(), MAX_RULE_LEN);
        assert!(Rule::parse(&exact).is_ok());
    }

    #[test]
    fn nesting_is_limited() {
        let nested = |depth: usize| format!("{}Host(`a`){}", "(".repeat(depth), ")".repeat(depth));
        assert!(Rule::parse(&nested(MAX_DEPTH)).is_ok());
        assert!(matches!(
            Rule::parse(&nested(MAX_DEPTH + 1)),
            Err(RuleError::TooDeep { .. })
        ));
        let negated = format!("{}Host(`a`)", "!".repeat(MAX_DEPTH + 1));
        assert!(matches!(Rule::parse(&negated), Err(RuleError::TooDeep { .. })));
        // The stack survives hostile input far past the limit, too.
        assert!(Rule::parse(&"(".repeat(MAX_RULE_LEN)).is_err());
        assert!(Rule::parse(&"!".repeat(MAX_RULE_LEN)).is_err());
        assert!(Rule::parse(&format!("PathRegexp(`{}`)", "(".repeat(4000))).is_err());
    }

    #[test]
    fn long_operator_chains_stay_flat() {
        let chain = vec!["Path(`/`)"; 300].join("&&");
        let rule = Rule::parse(&chain).unwrap();
        assert!(matches!(&rule.expr, Expr::And(operands) if operands.len() == 300));
    }

    #[test]
    fn from_hosts_builds_a_host_rule() {
        let rule = from_hosts("a.com,b.com").unwrap();
        assert_eq!(rule.as_str(), "Host(`a.com`) || Host(`b.com`)");
        assert_eq!(rule.hosts(), ["a.com", "b.com"]);
        assert!(!rule.is_catch_all());
        assert_eq!(from_hosts("a.com").unwrap().as_str(), "Host(`a.com`)");
        assert_eq!(
            from_hosts(" a.com , B.example-1.com ,A.COM").unwrap().as_str(),
            "Host(`a.com`) || Host(`B.example-1.com`)"
        );
        assert_eq!(from_hosts("127.0.0.1").unwrap().as_str(), "Host(`127.0.0.1`)");
    }

    #[test]
    fn from_hosts_rejects_bad_entries() {
        assert_eq!(from_hosts(""), Err(RuleError::EmptyHostList));
        assert_eq!(from_hosts("  "), Err(RuleError::EmptyHostList));
        let cases = [
            ("a.com,,b.com", "empty entry"),
            ("a.com,", "empty entry"),
            ("a b.com", "contains whitespace"),
            ("*.a.com", "wildcards are not supported"),
            ("a`.com", "contains a quote character"),
            ("a\".com", "contains a quote character"),
            ("exämple.com", "non-ASCII"),
            ("a_b.com", "contains `_`"),
            ("a.com/path", "contains `/`"),
            ("a.com:8080", "contains `:`"),
            ("{{.Host}}", "contains `{`"),
            ("-a.com", "starts or ends with a hyphen"),
            ("a..com", "empty label"),
            ("a.com.", "empty label"),
        ];
        for (list, reason) in cases {
            let error = from_hosts(list).unwrap_err().to_string();
            assert!(error.contains(reason), "{list:?}: {error}");
        }
        let long_label = format!("{}.com", "a".repeat(64));
        assert!(
            from_hosts(&long_label)
                .unwrap_err()
                .to_string()
                .contains("longer than 63")
        );
        let long_name = vec!["a".repeat(60); 5].join(".");
        assert!(
            from_hosts(&long_name)
                .unwrap_err()
                .to_string()
                .contains("longer than 253")
        );
    }

    #[test]
    fn display_and_from_str_round_trip() {
        let rule: Rule = " Host(`a.com`) ".parse().unwrap();
        assert_eq!(rule.to_string(), "Host(`a.com`)");
        assert_eq!(rule.to_string().parse::<Rule>(), Ok(rule));
    }

    /// xorshift64*: a tiny deterministic PRNG so the property tests need no
    /// dependency and fail the same way every run.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len())]
        }
    }

    /// The invariants every parse must keep, whatever the input.
    fn check_invariants(input: &str) {
        if let Ok(rule) = Rule::parse(input) {
            assert_eq!(Rule::parse(rule.as_str()).as_ref(), Ok(&rule), "{input:?}");
            assert!(rule.as_str().len() <= MAX_RULE_LEN);
            assert!(!rule.as_str().contains(['\n', '\r']) && !rule.as_str().contains("{{"));
            let hosts = rule.hosts();
            assert!(hosts.windows(2).all(|w| w[0] < w[1]), "{hosts:?}");
            let _ = rule.footprint();
        }
    }

    /// The alphabet of the token soup: pieces of valid rules, and the
    /// mistakes people make with them.
    const TOKENS: &[&str] = &[
        "Host",
        "host",
        "HOST",
        "Hots",
        "HostRegexp",
        "Path",
        "PathPrefix",
        "PathRegexp",
        "Method",
        "Header",
        "HeaderRegexp",
        "Query",
        "QueryRegexp",
        "ClientIP",
        "(",
        ")",
        ",",
        " ",
        "&&",
        "||",
        "!",
        "&",
        "|",
        "`a.com`",
        "`B.com`",
        "`/api`",
        "`/`",
        "``",
        "`GET`",
        "`10.0.0.0/8`",
        "`::1`",
        r"`(^|;\s*)x=y(;|$)`",
        "`[a-`",
        "`a**`",
        "`(?i)x`",
        "`{2}`",
        r#""a.com""#,
        r#""/x\u00e9""#,
        r#""\q""#,
        r#""\xff""#,
        "\"",
        "`",
        "'a'",
        "{{",
        "}}",
        "\\",
        "é",
        "\u{0}",
        "\n",
        "\t",
        "a.com",
        "123",
        "...",
        "//",
        "==",
        "\u{2028}",
    ];

    /// A random rule as a list of tokens, valid by construction for the
    /// matchers and arguments it picks (mutations then break it).
    fn token_rule(rng: &mut Rng, depth: usize, out: &mut Vec<&'static str>) {
        match if depth == 0 { 0 } else { rng.below(4) } {
            0 | 1 => {
                let (name, args): (&str, &[&str]) = match rng.below(5) {
                    0 => (rng.pick(&["Host", "host", "HOST"]), &["`a.com`"]),
                    1 => ("Host", &[r#""a.com""#]),
                    2 => ("PathPrefix", &["`/api`"]),
                    3 => ("HeaderRegexp", &["`Cookie`", r"`(^|;\s*)x=y(;|$)`"]),
                    _ => ("ClientIP", &["`10.0.0.0/8`"]),
                };
                out.extend([name, "("]);
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push(",");
                    }
                    out.push(arg);
                }
                out.push(")");
            }
            2 => {
                out.push(rng.pick(&["!", "("]));
                let open = *out.last().unwrap_or(&"") == "(";
                token_rule(rng, depth - 1, out);
                if open {
                    out.push(")");
                }
            }
            _ => {
                token_rule(rng, depth - 1, out);
                out.extend([" ", rng.pick(&["&&", "||"]), " "]);
                token_rule(rng, depth - 1, out);
            }
        }
    }

    #[test]
    fn random_token_soup_never_panics_and_round_trips() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..30_000 {
            let mut tokens = Vec::new();
            if round % 3 == 0 {
                // Pure soup.
                let len = 1 + rng.below(16);
                tokens.extend((0..len).map(|_| rng.pick(TOKENS)));
            } else {
                // A valid rule with 0-3 random insertions, deletions or
                // replacements.
                token_rule(&mut rng, 4, &mut tokens);
                for _ in 0..rng.below(4) {
                    let at = rng.below(tokens.len() + 1);
                    match rng.below(3) {
                        0 => tokens.insert(at, rng.pick(TOKENS)),
                        1 if at < tokens.len() => {
                            tokens.remove(at);
                        }
                        _ if at < tokens.len() => tokens[at] = rng.pick(TOKENS),
                        _ => {}
                    }
                }
            }
            let input = tokens.concat();
            check_invariants(&input);
            match Rule::parse(&input) {
                Ok(_) => accepted += 1,
                Err(_) => refused += 1,
            }
        }
        // Both outcomes must be well represented, or the test is vacuous.
        assert!(
            accepted > 3_000 && refused > 3_000,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn random_characters_never_panic() {
        const CHARS: &[&str] = &[
            "(",
            ")",
            "`",
            "\"",
            "\\",
            "&",
            "|",
            "!",
            ",",
            " ",
            "{",
            "}",
            "[",
            "]",
            "*",
            "?",
            "+",
            "-",
            "^",
            "$",
            ".",
            ":",
            "<",
            ">",
            "P",
            "p",
            "x",
            "u",
            "0",
            "7",
            "9",
            "a",
            "Q",
            "E",
            "é",
            "日",
            "\u{10FFFF}",
            "\u{0}",
            "\r",
        ];
        let mut rng = Rng(42);
        for round in 0..20_000 {
            // Mostly short, sometimes past the length limit.
            let len = if round % 500 == 0 {
                4000 + rng.below(200)
            } else {
                rng.below(40)
            };
            let input: String = (0..len).map(|_| rng.pick(CHARS)).collect();
            check_invariants(&input);
            // Also through every argument position, to reach the regexp
            // checker, escape decoding and IP parsing with arbitrary text.
            for matcher in [
                "HeaderRegexp(`h`, `{}`)",
                "Path(\"{}\")",
                "ClientIP(`{}`)",
                "HostRegexp(`{}`)",
            ] {
                check_invariants(&matcher.replace("{}", &input));
            }
        }
    }

    /// Random valid rules, built from a grammar, must all parse, round-trip,
    /// and report exactly the hosts that went into them.
    #[test]
    fn random_valid_rules_parse() {
        fn matcher(rng: &mut Rng, hosts: &mut Vec<String>) -> String {
            match rng.below(8) {
                0 | 1 => {
                    let host = rng.pick(&["a.com", "B.com", "x.example.org", "*"]);
                    hosts.push(host.to_ascii_lowercase());
                    let name = rng.pick(&["Host", "host", "HOST"]);
                    if rng.below(2) == 0 {
                        format!("{name}(`{host}`)")
                    } else {
                        format!("{name}(\"{host}\")")
                    }
                }
                2 => format!("PathPrefix(`{}`)", rng.pick(&["/", "/api", "/v1/x"])),
                3 => format!("HostRegexp(`{}`)", rng.pick(&[r"^.+\.com$", "a|b", "[a-z]{2,3}"])),
                4 => format!(
                    "Header(`{}`, `{}`)",
                    rng.pick(&["X-A", "Cookie"]),
                    rng.pick(&["1", "a b"])
                ),
                5 => format!("Query(`k`{})", rng.pick(&["", ", `v`"])),
                6 => format!("ClientIP(`{}`)", rng.pick(&["10.0.0.0/8", "::1", "fd00::/8"])),
                _ => format!("Method(`{}`)", rng.pick(&["GET", "post"])),
            }
        }
        fn expr(rng: &mut Rng, depth: usize, hosts: &mut Vec<String>) -> String {
            let space = |rng: &mut Rng| rng.pick(&["", " ", "  "]);
            match if depth == 0 { 0 } else { rng.below(5) } {
                0 | 1 => matcher(rng, hosts),
                2 => format!("!{}", expr(rng, depth - 1, hosts)),
                3 => format!("({}{}{})", space(rng), expr(rng, depth - 1, hosts), space(rng)),
                _ => {
                    let op = rng.pick(&["&&", "||"]);
                    let left = expr(rng, depth - 1, hosts);
                    let (s1, s2) = (space(rng), space(rng));
                    format!("{left}{s1}{op}{s2}{}", expr(rng, depth - 1, hosts))
                }
            }
        }
        let mut rng = Rng(7);
        for _ in 0..5_000 {
            let mut hosts = Vec::new();
            let text = expr(&mut rng, 5, &mut hosts);
            let rule = Rule::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            check_invariants(&text);
            hosts.sort();
            hosts.dedup();
            assert_eq!(rule.hosts(), hosts, "{text}");
        }
    }
}
