// TEMPORARY STUB (lead) — helper-1 replaces this file entirely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule(String);
impl Rule {
    pub fn parse(text: &str) -> Result<Rule, RuleError> { let t = text.trim(); if t.is_empty() { return Err(RuleError::Empty) } Ok(Rule(t.to_string())) }
    pub fn hosts(&self) -> Vec<String> { vec![] }
    pub fn has_host_matcher(&self) -> bool { true }
    pub fn as_str(&self) -> &str { &self.0 }
}
pub fn from_hosts(list: &str) -> Result<Rule, RuleError> {
    let hosts: Vec<String> = list.split(',').map(|h| format!("Host(`{}`)", h.trim())).collect();
    Ok(Rule(hosts.join(" || ")))
}
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError { #[error("rule is empty")] Empty }
