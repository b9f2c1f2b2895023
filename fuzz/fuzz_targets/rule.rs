//! Traefik rules as a label gives them: any text parses to a rule or to an error, never a
//! panic; a rule that parses yields its hosts and its text like the controller asks of it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pointsman::core::rule::Rule;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(rule) = Rule::parse(text) {
        let _ = rule.hosts();
        let _ = rule.is_catch_all();
        let _ = rule.footprint();
        assert!(!rule.as_str().is_empty() || text.trim().is_empty());
    }
});
