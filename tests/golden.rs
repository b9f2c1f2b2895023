//! Golden tests of the pure core: `fixtures/render/CASE/input.json` (inspect-shaped
//! containers, optional state and settings) → `fixtures/render/CASE/expected/` (every
//! rendered file, the state after seeding, and the errors and notices).
//!
//! `POINTSMAN_UPDATE_FIXTURES=1 cargo test --test golden` rewrites the expected files; review
//! the diff before committing it.

mod support;

use std::collections::BTreeMap;
use std::fs;

use pointsman::backend::dir;
use pointsman::core::render;
use support::fixtures;

/// Everything the core produces for one case, by output file name.
fn outputs(input: &fixtures::Input) -> BTreeMap<String, String> {
    let fixtures::Prepared {
        settings,
        fleet,
        state,
        seeding,
    } = fixtures::prepare(input);
    let mut out: BTreeMap<String, String> = render::render_all(&fleet, &state, &settings)
        .into_iter()
        .map(|(app, config)| {
            let bytes = dir::encode(&config);
            (
                dir::file_name(&app),
                String::from_utf8(bytes).expect("rendered files are UTF-8"),
            )
        })
        .collect();
    out.insert(
        "state.json".into(),
        serde_json::to_string_pretty(&state).unwrap() + "\n",
    );
    let mut report = String::new();
    for e in &fleet.errors() {
        report += &format!("error: {e}\n");
    }
    for n in &seeding.notices {
        report += &format!("notice: {n}\n");
    }
    out.insert("report.txt".into(), report);
    out
}

#[test]
fn golden_render_cases() {
    let update = std::env::var_os("POINTSMAN_UPDATE_FIXTURES").is_some();
    let cases = fixtures::cases();
    let mut failures = Vec::new();
    for case in &cases {
        let input = fixtures::load(case);
        let actual = outputs(&input);
        let expected_dir = case.join("expected");
        if update {
            let _ = fs::remove_dir_all(&expected_dir);
            fs::create_dir_all(&expected_dir).unwrap();
            for (name, text) in &actual {
                fs::write(expected_dir.join(name), text).unwrap();
            }
            continue;
        }
        let mut expected = BTreeMap::new();
        for entry in fs::read_dir(&expected_dir).unwrap_or_else(|_| {
            panic!(
                "{} has no expected/ (run with POINTSMAN_UPDATE_FIXTURES=1)",
                case.display()
            )
        }) {
            let path = entry.unwrap().path();
            expected.insert(
                path.file_name().unwrap().to_str().unwrap().to_string(),
                fs::read_to_string(&path).unwrap(),
            );
        }
        let names: std::collections::BTreeSet<_> = expected.keys().chain(actual.keys()).collect();
        for name in names {
            let (e, a) = (expected.get(name), actual.get(name));
            if e != a {
                failures.push(format!(
                    "{}/expected/{name}:\n{}",
                    case.file_name().unwrap().to_string_lossy(),
                    diff(e.map_or("", String::as_str), a.map_or("", String::as_str))
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden file(s) differ (- expected, + actual); if the change is intended, rerun with POINTSMAN_UPDATE_FIXTURES=1\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A unified diff with 2 lines of context.
fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(2)
        .header("expected", "actual")
        .to_string()
}
