//! The rule parser judged by a real Traefik.
//!
//! pointsman refuses any router rule Traefik would reject, before writing it
//! (`pointsman::core::rule`). This test checks that claim against Traefik itself: every rule of
//! the parser's table (`fixtures/rules/table.json`), a catalogue that walks the grammar one
//! dimension at a time, and a few hundred seeded random rules ([`generate`]) become routers in
//! one file-provider file; one Traefik loads it, and its API says which routers it enabled.
//! pointsman must accept exactly those.
//!
//! The only disagreements allowed are the documented ones (module docs of
//! `src/core/rule/mod.rs`): pointsman refusing a rule Traefik enables, *for one of the reasons
//! listed there*, which [`documented_strictness`] checks from the error and the rule text. They
//! are counted and printed. pointsman accepting a rule Traefik refuses is always a bug.
//!
//! Rules containing `{{` never reach Traefik: its file provider runs every file through Go's
//! `text/template` first, so one such rule would break the whole file. pointsman refuses them on
//! purpose; the test checks that it does.
//!
//! `POINTSMAN_RULE_SEED=N` replays the random rules of seed N (the seed is printed);
//! `POINTSMAN_RULE_COUNT=N` changes how many there are (default 600);
//! `POINTSMAN_RULE_VERBOSE=1` lists every rule where pointsman is stricter, not one per reason.

#[path = "rule_oracle/generate.rs"]
mod generate;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use pointsman::core::rule::{MAX_RULE_LEN, Rule, RuleError};
use serde_json::{Value, json};
use support::{Traefik, http_get};

const TABLE: &str = include_str!("../fixtures/rules/table.json");
const DEFAULT_SEED: u64 = 0x7AEF_5EED;
const DEFAULT_COUNT: usize = 600;
/// How long Traefik may take to show every router after it answers `/ping`.
const LOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// A router every Traefik enables: proof that the file was loaded at all.
const CONTROL: (&str, &str) = ("control", "Host(`control.test`) && PathPrefix(`/`)");

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Origin {
    Table,
    Catalogue,
    Random,
}

/// Where pointsman is stricter than Traefik on purpose, one variant per item of the list in the
/// module docs of `src/core/rule/mod.rs`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Strictness {
    ControlCharacter,
    TemplateDelimiter,
    NotInYaml,
    RuleLength,
    RuleNesting,
    GoComment,
    VariadicSpread,
    InvalidUtf8,
    MethodToken,
    UnicodeClassName,
    RegexpGroupDepth,
    RegexpSize,
}

#[test]
fn pointsman_accepts_exactly_the_rules_traefik_enables() {
    let started = Instant::now();
    let seed = env_number("POINTSMAN_RULE_SEED").unwrap_or(DEFAULT_SEED);
    let count = env_number("POINTSMAN_RULE_COUNT").map_or(DEFAULT_COUNT, |n| n as usize);
    eprintln!("rule_oracle: seed {seed} (POINTSMAN_RULE_SEED={seed} replays it), {count} random rules");

    // Template delimiters stay out of Traefik's file; pointsman must refuse them itself.
    let (templates, rules): (Vec<_>, Vec<_>) = rules_under_test(seed, count)
        .into_iter()
        .partition(|(_, rule)| rule.contains("{{"));
    for (_, rule) in &templates {
        assert!(
            Rule::parse(rule).is_err(),
            "{rule:?} contains `{{{{` but pointsman accepts it"
        );
    }
    assert!(rules.len() >= 500, "only {} rules", rules.len());

    let dir = support::temp_dir("rule-oracle").join("dynamic");
    fs::create_dir_all(&dir).unwrap();
    let names = write_routers(&dir, &rules);
    let traefik = Traefik::start(&dir);
    let loaded = wait_for_routers(&traefik, names.len() + 1);
    let control = &loaded[CONTROL.0];
    assert_eq!(
        control["status"],
        "enabled",
        "the control router is not enabled, so the file was not loaded as meant: {control}\nlog:\n{}",
        traefik.log()
    );

    let mut agreements = 0;
    let mut stricter: BTreeMap<Strictness, Vec<&str>> = BTreeMap::new();
    let mut disagreements = Vec::new();
    let mut by_origin: BTreeMap<Origin, usize> = BTreeMap::new();
    for (name, (origin, rule)) in names.iter().zip(&rules) {
        *by_origin.entry(*origin).or_default() += 1;
        let router = &loaded[name.as_str()];
        // A rule that came back different would mean the file, not the parser, is wrong.
        // (The API leaves an empty rule out.)
        let seen = router["rule"].as_str().unwrap_or_default();
        assert_eq!(seen, rule, "{name}: the rule changed on its way into Traefik");
        let enabled = router["status"] == "enabled";
        let verdict = Rule::parse(rule);
        let strictness = verdict
            .as_ref()
            .err()
            .and_then(|error| documented_strictness(rule, error));
        match (&verdict, enabled, strictness) {
            (Ok(_), true, _) | (Err(_), false, _) => agreements += 1,
            (Err(_), true, Some(class)) => stricter.entry(class).or_default().push(rule),
            _ => disagreements.push(format!(
                "{name} ({origin:?}) {rule:?}\n    traefik:   {} {}\n    pointsman: {}",
                router["status"].as_str().unwrap_or("?"),
                router["error"],
                match &verdict {
                    Ok(_) => "accepted".to_string(),
                    Err(error) => format!("refused: {error}"),
                },
            )),
        }
    }

    let mut report = format!(
        "rule_oracle: {} rules in Traefik ({} table, {} catalogue, {} random) + {} with `{{{{` kept out; \
         {agreements} agree, {} documented strictness, {} disagree; {:.1?}\n",
        rules.len(),
        by_origin.get(&Origin::Table).unwrap_or(&0),
        by_origin.get(&Origin::Catalogue).unwrap_or(&0),
        by_origin.get(&Origin::Random).unwrap_or(&0),
        templates.len(),
        stricter.values().map(Vec::len).sum::<usize>(),
        disagreements.len(),
        started.elapsed(),
    );
    let verbose = std::env::var_os("POINTSMAN_RULE_VERBOSE").is_some();
    for (class, examples) in &stricter {
        let _ = writeln!(report, "  stricter than Traefik, {class:?}: {}", examples.len());
        let shown = if verbose { examples.len() } else { 1 };
        for example in examples.iter().take(shown) {
            let _ = writeln!(report, "    e.g. {:?}", shorten(example));
        }
    }
    eprint!("{report}");
    assert!(
        disagreements.is_empty(),
        "pointsman and Traefik disagree on {} rules (seed {seed}):\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

/// The table's rules, the catalogue, then `count` random rules of `seed`, each rule once.
fn rules_under_test(seed: u64, count: usize) -> Vec<(Origin, String)> {
    let table: Value = serde_json::from_str(TABLE).expect("fixtures/rules/table.json");
    let table = table["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| (Origin::Table, case["rule"].as_str().expect("rule").to_string()));
    let catalogue = generate::catalogue().into_iter().map(|r| (Origin::Catalogue, r));
    let random = generate::random(seed, count).into_iter().map(|r| (Origin::Random, r));
    let mut seen = BTreeSet::new();
    table
        .chain(catalogue)
        .chain(random)
        .filter(|(_, rule)| seen.insert(rule.clone()))
        .collect()
}

/// Writes one router per rule (`r0001`, ...), plus [`CONTROL`], all on one service; returns
/// the routers' names in the order of `rules`. Written before Traefik starts, so its initial
/// load has everything and no throttle is waited for.
///
/// Rules pointsman accepts go to `accepted.yml` exactly as pointsman's renderer writes them
/// (serde_json, raw UTF-8): a character pointsman lets through but YAML cannot hold would make
/// Traefik reject that whole file, and this test fail. Refused rules go to `refused.yml`,
/// escaped so that they reach Traefik's rule parser whatever they contain.
fn write_routers(dir: &Path, rules: &[(Origin, String)]) -> Vec<String> {
    let router = |rule: &str| json!({ "rule": rule, "entryPoints": ["web"], "service": "dummy" });
    let names: Vec<String> = (1..=rules.len()).map(|i| format!("r{i:04}")).collect();
    let mut accepted = serde_json::Map::new();
    let mut refused = serde_json::Map::new();
    accepted.insert(CONTROL.0.to_string(), router(CONTROL.1));
    for (name, (_, rule)) in names.iter().zip(rules) {
        let routers = if Rule::parse(rule).is_ok() {
            &mut accepted
        } else {
            &mut refused
        };
        routers.insert(name.clone(), router(rule));
    }
    let accepted = json!({
        "http": {
            "routers": accepted,
            "services": { "dummy": { "loadBalancer": { "servers": [{ "url": "http://127.0.0.1:9" }] } } },
        }
    });
    let refused = json!({ "http": { "routers": refused } });
    // Pretty-printed, so the file's own braces never make a `{{`.
    fs::write(
        dir.join("accepted.yml"),
        serde_json::to_string_pretty(&accepted).unwrap(),
    )
    .unwrap();
    fs::write(dir.join("refused.yml"), yaml_safe_json(&refused)).unwrap();
    names
}

/// Waits until Traefik's API shows `expected` routers from the file provider, and returns them.
fn wait_for_routers(traefik: &Traefik, expected: usize) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + LOAD_TIMEOUT;
    loop {
        let routers = file_routers(traefik);
        if routers.len() == expected {
            return routers;
        }
        // A file Traefik cannot read at all shows no router, ever: say so now, not at timeout.
        let log = traefik.log();
        assert!(
            !log.contains("collecting file configs"),
            "Traefik refused a whole file, so pointsman wrote (or this test built) one it cannot read:\n{log}"
        );
        assert!(
            Instant::now() < deadline,
            "Traefik shows {} of the {expected} routers after {LOAD_TIMEOUT:?}; its log:\n{log}",
            routers.len(),
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// At most 100 characters of `text`, so that a 4 KB rule does not flood the report.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(100) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(value.trim().parse().unwrap_or_else(|e| panic!("{name}={value:?}: {e}")))
}

/// JSON that is also valid YAML for Traefik's YAML reader, whatever its strings contain: YAML
/// forbids raw DEL, C1 controls, U+FFFE and U+FFFF even inside quoted strings, and folds a raw
/// U+0085 into a space; serde_json writes all of them raw. Escaping every non-ASCII character
/// of the Basic Multilingual Plane as `\uXXXX` is valid in both; characters above it are
/// printable in YAML, so they stay raw (YAML has no surrogate pairs).
fn yaml_safe_json(value: &Value) -> String {
    let json = serde_json::to_string_pretty(value).unwrap();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c as u32 {
            0x7F..=0xFFFF => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Every `@file` router in Traefik's API, by name without the provider, paging through.
fn file_routers(traefik: &Traefik) -> BTreeMap<String, Value> {
    let mut routers = BTreeMap::new();
    let mut page = 1;
    loop {
        let path = format!("/api/http/routers?per_page=500&page={page}");
        let Ok(response) = http_get(traefik.api_addr(), "localhost", &path, &[]) else {
            return BTreeMap::new();
        };
        let Ok(Value::Array(items)) = serde_json::from_str(&response.body) else {
            return BTreeMap::new();
        };
        for item in items {
            if let Some(name) = item["name"].as_str().and_then(|n| n.strip_suffix("@file")) {
                routers.insert(name.to_string(), item);
            }
        }
        // Traefik names the next page, or 1 after the last one.
        match response.header("X-Next-Page").and_then(|p| p.parse::<u32>().ok()) {
            Some(next) if next > page => page = next,
            _ => return routers,
        }
    }
}

/// The documented reason pointsman is stricter than Traefik, when `error` is one, checked
/// against the rule text where it can be (a refusal that merely happens to use the same
/// error variant for another reason does not count).
fn documented_strictness(rule: &str, error: &RuleError) -> Option<Strictness> {
    let at = |column: usize| -> String { rule.chars().skip(column - 1).collect() };
    match error {
        RuleError::Newline { column } => {
            let c = at(*column).chars().next()?;
            matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}').then_some(Strictness::ControlCharacter)
        }
        RuleError::ControlCharacter { column, .. } => at(*column)
            .chars()
            .next()?
            .is_control()
            .then_some(Strictness::ControlCharacter),
        RuleError::TemplateDelimiter { column, delimiter } => at(*column)
            .starts_with(delimiter)
            .then_some(Strictness::TemplateDelimiter),
        RuleError::NotInYaml { column, .. } => {
            let c = at(*column).chars().next()?;
            matches!(c, '\u{FFFE}' | '\u{FFFF}').then_some(Strictness::NotInYaml)
        }
        RuleError::TooLong { .. } => (rule.trim().len() > MAX_RULE_LEN).then_some(Strictness::RuleLength),
        RuleError::TooDeep { .. } => Some(Strictness::RuleNesting),
        RuleError::UnexpectedCharacter { column, found: '/', .. } => {
            let text = at(*column);
            (text.starts_with("//") || text.starts_with("/*")).then_some(Strictness::GoComment)
        }
        RuleError::UnexpectedCharacter { column, found: '.', .. } => {
            at(*column).starts_with("...").then_some(Strictness::VariadicSpread)
        }
        RuleError::InvalidUtf8 { .. } => Some(Strictness::InvalidUtf8),
        RuleError::InvalidArgument {
            matcher: "Method",
            reason,
            ..
        } if reason.ends_with("is not an HTTP method") => Some(Strictness::MethodToken),
        RuleError::InvalidArgument { reason, .. } => {
            if reason.starts_with("unknown or unsupported Unicode class") {
                Some(Strictness::UnicodeClassName)
            } else if reason.starts_with("groups are nested more than") {
                Some(Strictness::RegexpGroupDepth)
            } else if reason.starts_with("regexp is too large once its repetitions are expanded") {
                Some(Strictness::RegexpSize)
            } else {
                None
            }
        }
        _ => None,
    }
}
