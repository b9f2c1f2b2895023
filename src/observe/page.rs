//! The status page: server-rendered HTML, no client framework, nothing from a CDN.
//!
//! Every value shown comes through [`Html::text`], which escapes it; markup can only be
//! added as a `&'static str` ([`Html::raw`]), so no label value, rule, error or history
//! detail can reach the page unescaped (a container's labels are whatever its owner wrote).
//! The page also forbids inline scripts and handlers by its Content-Security-Policy (see
//! `http`), so even a mistake here could not run anything.
//!
//! `page.js` keeps it live: every 2 s it asks `fragment?since=GENERATION`, which answers
//! 204 when nothing changed, else the new `<main>` content rendered here.

use super::View;
use super::status::{AppView, SlotView};
use super::traffic::Rate;
use crate::core::names;

/// HTML under construction: escaped text, static markup.
#[derive(Default)]
pub struct Html(String);

impl Html {
    /// Markup: only string literals (or other `'static` text), never a value.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// A value, escaped for element content and quoted attribute values alike.
    pub fn text(&mut self, value: &str) -> &mut Self {
        for c in value.chars() {
            match c {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                c => self.0.push(c),
            }
        }
        self
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The whole page.
pub fn page(view: &View) -> String {
    let mut h = Html::default();
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<title>pointsman</title><link rel=\"stylesheet\" href=\"page.css\">")
        .raw("<script src=\"page.js\" defer></script></head><body>")
        .raw("<header><h1>pointsman</h1><span class=\"version\">")
        .text(view.version)
        .raw("</span><span id=\"live\" class=\"live\">live</span></header>")
        .raw("<main id=\"status\" data-generation=\"")
        .text(&view.generation.to_string())
        .raw("\">");
    main_content(&mut h, view);
    h.raw("</main><footer>Read-only: roles change with the CLI (<code>pointsman promote APP</code>, ")
        .raw("<code>rollback</code>, <code>canary</code>…). Also: <a href=\"status.json\">status.json</a>, ")
        .raw("<a href=\"metrics\">metrics</a>, <a href=\"healthz\">healthz</a>.</footer></body></html>\n");
    h.into_string()
}

/// The content of `<main>`, also served alone as the live update.
pub fn fragment(view: &View) -> String {
    let mut h = Html::default();
    main_content(&mut h, view);
    h.into_string()
}

fn main_content(h: &mut Html, view: &View) {
    let status = &view.status;
    h.raw("<section class=\"summary\"><p class=\"health ")
        .raw(if view.health.healthy {
            "ok\">healthy"
        } else {
            "bad\">unhealthy"
        })
        .raw("</p><p class=\"reason\">")
        .text(&view.health.reason)
        .raw("</p><p class=\"updated\">state as of ")
        .text(if status.updated.is_empty() {
            "—"
        } else {
            &status.updated
        })
        .raw("</p></section>");
    if status.apps.is_empty() {
        h.raw("<p class=\"empty\">No apps yet: no container carries the app label.</p>");
    }
    for app in &status.apps {
        app_section(h, app, view);
    }
    if !status.errors.is_empty() {
        h.raw("<section class=\"errors\"><h2>Containers left out</h2><table><thead><tr><th>container</th>")
            .raw("<th>label</th><th>reason</th></tr></thead><tbody>");
        for e in &status.errors {
            h.raw("<tr><td>")
                .text(&e.container)
                .raw("</td><td><code>")
                .text(&e.label)
                .raw("</code></td><td class=\"reason\">")
                .text(&e.reason)
                .raw("</td></tr>");
        }
        h.raw("</tbody></table></section>");
    }
    h.raw("<section class=\"history\"><h2>Recent history</h2>");
    if status.history.is_empty() {
        h.raw("<p class=\"empty\">No transition recorded yet.</p>");
    } else {
        h.raw("<table><thead><tr><th>time</th><th>app</th><th>action</th><th>from → to</th><th>by</th>")
            .raw("<th>detail</th></tr></thead><tbody>");
        for t in &status.history {
            h.raw("<tr><td class=\"time\">")
                .text(&t.at)
                .raw("</td><td>")
                .text(&t.app)
                .raw("</td><td>")
                .text(&enum_name(&t.action))
                .raw("</td><td>")
                .text(t.from.as_deref().unwrap_or("-"))
                .raw(" → ")
                .text(&t.to)
                .raw("</td><td>")
                .text(&enum_name(&t.by))
                .raw("</td><td>")
                .text(t.detail.as_deref().unwrap_or(""))
                .raw("</td></tr>");
        }
        h.raw("</tbody></table>");
    }
    h.raw("</section>");
    if view.traffic.enabled {
        h.raw("<p class=\"traffic-note\">Traffic from Traefik's metrics, over ")
            .text(&format!("{} s", super::traffic::SAMPLE_EVERY.as_secs()))
            .raw(" windows");
        match (&view.traffic.error, &view.traffic.at) {
            (Some(e), _) => h.raw("; the last sample failed: ").text(e),
            (None, Some(at)) => h.raw("; last window ended ").text(at),
            (None, None) => h.raw("; first window under way"),
        };
        h.raw(".</p>");
    }
}

fn app_section(h: &mut Html, app: &AppView, view: &View) {
    h.raw("<section class=\"app\" data-app=\"")
        .text(&app.name)
        .raw("\"><h2>")
        .text(&app.name)
        .raw("</h2><p class=\"route\"><code>")
        .text(if app.rule.is_empty() {
            "(no container: no route)"
        } else {
            &app.rule
        })
        .raw("</code>");
    if !app.entrypoints.is_empty() {
        h.raw(" on ").text(&app.entrypoints.join(", "));
    }
    h.raw("</p><p class=\"roles\">stable <b class=\"stable\">")
        .text(app.stable.as_deref().unwrap_or("-"))
        .raw("</b> · candidate <b class=\"candidate\">")
        .text(app.candidate.as_deref().unwrap_or("-"))
        .raw("</b> · previous <b>")
        .text(app.previous.as_deref().unwrap_or("-"))
        .raw("</b>");
    if let Some(p) = &app.pinned {
        h.raw(" · pinned <b>").text(p).raw("</b>");
    }
    h.raw(" · canary <b class=\"canary\">")
        .text(&format!("{} %", app.canary_percent))
        .raw("</b> · mirror <b class=\"mirror\">")
        .text(&format!("{} %", app.mirror_percent))
        .raw("</b></p>");
    if let Some(refused) = &app.refused {
        h.raw("<p class=\"bad\">Not routed: ").text(refused).raw("</p>");
    }
    if let Some(r) = &app.rollout {
        h.raw("<p class=\"rollout\">rollout of <b>")
            .text(&r.slot)
            .raw("</b>: step ")
            .text(&format!("{} of {}", r.step, r.steps.len()))
            .raw(" <progress max=\"")
            .text(&r.steps.len().to_string())
            .raw("\" value=\"")
            .text(&r.step.to_string())
            .raw("\"></progress> ")
            .text(&format!(
                "{} % ({}), this step until {}{}; {}",
                r.weight,
                r.steps.iter().map(|s| format!("{s} %")).collect::<Vec<_>>().join(" → "),
                r.until,
                if r.extended > 0 {
                    format!(" (extended {}×)", r.extended)
                } else {
                    String::new()
                },
                if r.analysis {
                    "judged by Traefik's metrics"
                } else {
                    "not judged (--no-analysis)"
                }
            ))
            .raw("</p>");
    }
    if app.slots.is_empty() {
        h.raw("<p class=\"empty\">No container: its file is removed and its roles are kept.</p></section>");
        return;
    }
    h.raw("<table class=\"slots\"><thead><tr><th>slot</th><th>role</th><th>public share</th><th>servers</th>")
        .raw("<th>containers</th>");
    if view.traffic.enabled {
        h.raw("<th>requests/s</th><th>5xx</th>");
    }
    h.raw("</tr></thead><tbody>");
    for slot in &app.slots {
        slot_row(h, app, slot, view);
    }
    h.raw("</tbody></table></section>");
}

fn slot_row(h: &mut Html, app: &AppView, slot: &SlotView, view: &View) {
    h.raw("<tr class=\"slot ")
        .raw(match slot.role {
            "stable" => "stable",
            "candidate" => "candidate",
            _ => "idle",
        })
        .raw("\" data-slot=\"")
        .text(&slot.name)
        .raw("\"><td class=\"name\">")
        .text(&slot.name)
        .raw("</td><td class=\"role\">")
        .text(slot.role)
        .raw("</td><td>")
        .text(&format!("{} %", slot.public_percent))
        .raw("</td><td class=\"servers\">");
    if slot.servers.is_empty() {
        h.raw("none routable");
    }
    for (i, s) in slot.servers.iter().enumerate() {
        if i > 0 {
            h.raw("<br>");
        }
        h.text(s);
    }
    h.raw("</td><td class=\"containers\">");
    for (i, c) in slot.containers.iter().enumerate() {
        if i > 0 {
            h.raw("<br>");
        }
        h.text(&c.name)
            .raw(" <span class=\"cond ")
            .text(&enum_name(&c.condition))
            .raw("\">")
            .text(&enum_name(&c.condition))
            .raw("</span>");
    }
    h.raw("</td>");
    if view.traffic.enabled {
        let rate = slot_traffic(app, slot, &view.traffic.rates);
        h.raw("<td class=\"rate\">")
            .text(&rate.map_or("-".into(), |r| format!("{:.1}", r.requests_per_second)))
            .raw("</td><td class=\"errors\">")
            .text(
                &rate
                    .and_then(|r| r.error_ratio)
                    .map_or("-".into(), |e| format!("{:.1} %", e * 100.0)),
            )
            .raw("</td>");
    }
    h.raw("</tr>");
}

/// The traffic a slot served, in total: its own service (`APP.slot.SLOT`: the cookie, header
/// and preview routes, mirrored copies, and the stable slot's share of a canary), its canary
/// child (`APP.canary.SLOT`: the candidate's share of a canary's public traffic) and, for the
/// stable slot outside a canary, the public service that routes to it alone (`APP`, or
/// `APP.primary` while mirroring). Names come from [`names`], as the renderer makes them.
pub fn slot_traffic(app: &AppView, slot: &SlotView, rates: &std::collections::BTreeMap<String, Rate>) -> Option<Rate> {
    let mut services = vec![names::slot(&app.name, &slot.name), names::canary(&app.name, &slot.name)];
    if slot.role == "stable" && slot.public_percent == 100 {
        services.push(if app.mirror_percent > 0 && app.candidate.is_some() {
            names::primary(&app.name)
        } else {
            names::public(&app.name)
        });
    }
    // Traefik names them by the provider they came through: the directory's or Redis's.
    let found: Vec<&Rate> = services
        .iter()
        .filter_map(|s| {
            rates
                .get(&format!("{s}@file"))
                .or_else(|| rates.get(&format!("{s}@redis")))
        })
        .collect();
    if found.is_empty() {
        return None;
    }
    let rps: f64 = found.iter().map(|r| r.requests_per_second).sum();
    let errors: f64 = found
        .iter()
        .map(|r| r.requests_per_second * r.error_ratio.unwrap_or(0.0))
        .sum();
    Some(Rate {
        requests_per_second: rps,
        error_ratio: (rps > 0.0).then(|| errors / rps),
    })
}

/// A serde enum's lowercase name (`promote`, `cli`, `ready`).
fn enum_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::health::{DockerLink, Verdict};
    use crate::observe::status::{ContainerView, ErrorView, Status};
    use crate::observe::{Traffic, View};
    use std::sync::Arc;

    const HOSTILE: &str = "<script>window.pwned=1</script><img src=x onerror=\"document.title='pwned'\">'&";

    fn view(status: Status) -> View {
        View {
            version: "0.0.0",
            generation: 7,
            health: Verdict {
                healthy: true,
                reason: "ok".into(),
            },
            docker: DockerLink::Connecting,
            status: Arc::new(status),
            traffic: Traffic::default(),
        }
    }

    #[test]
    fn text_escapes_markup_and_both_quotes() {
        let mut h = Html::default();
        h.raw("<p title=\"").text("\"><b>'&").raw("\">");
        assert_eq!(h.into_string(), "<p title=\"&quot;&gt;&lt;b&gt;&#39;&amp;\">");
    }

    /// Every place a label-derived value appears: rule, slot, container, error, history.
    #[test]
    fn no_value_reaches_the_page_unescaped() {
        let slot = SlotView {
            name: HOSTILE.into(),
            role: "stable",
            public_percent: 100,
            servers: vec![HOSTILE.into()],
            containers: vec![ContainerView {
                name: HOSTILE.into(),
                id: "0123456789ab".into(),
                condition: crate::core::container::Condition::Ready,
                url: None,
            }],
        };
        let app = AppView {
            name: "web".into(),
            rule: HOSTILE.into(),
            entrypoints: vec![HOSTILE.into()],
            stable: Some(HOSTILE.into()),
            candidate: Some(HOSTILE.into()),
            previous: Some(HOSTILE.into()),
            pinned: Some(HOSTILE.into()),
            canary_percent: 0,
            mirror_percent: 0,
            rollout: None,
            slots: vec![slot],
            refused: Some(HOSTILE.into()),
        };
        let status = Status {
            updated: HOSTILE.into(),
            apps: vec![app],
            errors: vec![ErrorView {
                container: HOSTILE.into(),
                label: HOSTILE.into(),
                reason: HOSTILE.repeat(25_000 / HOSTILE.len() * 4),
            }],
            history: vec![crate::core::state::Transition {
                at: HOSTILE.into(),
                app: HOSTILE.into(),
                action: crate::core::state::Action::Promote,
                from: Some(HOSTILE.into()),
                to: HOSTILE.into(),
                by: crate::core::state::Actor::Cli,
                detail: Some(HOSTILE.into()),
                id: None,
            }],
        };
        let html = page(&view(status));
        assert!(html.len() > 100_000, "the 100 kB value is shown whole, escaped");
        for bad in ["<script>window", "<img", "onerror=\"", "'pwned'"] {
            assert!(!html.contains(bad), "{bad} reached the page");
        }
        assert!(html.contains("&lt;script&gt;window.pwned=1&lt;/script&gt;"));
        // The only scripts are the page's own.
        assert_eq!(html.matches("<script").count(), 1);
    }

    /// During a canary each slot's row shows its total: the candidate's slot service (preview
    /// requests) plus its canary child (its public share); the stable slot's own service. Names
    /// are the renderer's, under either provider.
    #[test]
    fn a_slot_shows_its_whole_traffic_under_the_names_the_renderer_makes() {
        let slot = |name: &str, role: &'static str, public_percent: u8| SlotView {
            name: name.into(),
            role,
            public_percent,
            servers: vec![],
            containers: vec![],
        };
        let mut app = AppView {
            name: "web".into(),
            rule: "Host(`web.test`)".into(),
            entrypoints: vec!["web".into()],
            stable: Some("blue".into()),
            candidate: Some("green".into()),
            previous: None,
            pinned: None,
            canary_percent: 10,
            mirror_percent: 0,
            rollout: None,
            slots: vec![],
            refused: None,
        };
        let rate = |rps: f64, errors: f64| Rate {
            requests_per_second: rps,
            error_ratio: Some(errors),
        };
        for provider in ["file", "redis"] {
            let at = |name: String| format!("{name}@{provider}");
            let rates = std::collections::BTreeMap::from([
                (at(names::public("web")), rate(100.0, 0.0)),
                (at(names::slot("web", "blue")), rate(90.0, 0.0)),
                (at(names::slot("web", "green")), rate(2.0, 1.0)),
                (at(names::canary("web", "green")), rate(8.0, 0.0)),
                (at(names::slot("webx", "green")), rate(50.0, 1.0)),
            ]);
            let green = slot_traffic(&app, &slot("green", "candidate", 10), &rates).unwrap();
            assert_eq!(green.requests_per_second, 10.0, "{provider}: 2 preview + 8 public");
            assert_eq!(green.error_ratio, Some(0.2), "{provider}: the 2 preview ones failed");
            let blue = slot_traffic(&app, &slot("blue", "stable", 90), &rates).unwrap();
            assert_eq!(blue.requests_per_second, 90.0, "{provider}");
            // Outside a canary the stable slot's public traffic is the public service's.
            app.canary_percent = 0;
            let blue = slot_traffic(&app, &slot("blue", "stable", 100), &rates).unwrap();
            assert_eq!(blue.requests_per_second, 190.0, "{provider}");
            app.canary_percent = 10;
        }
        assert_eq!(slot_traffic(&app, &slot("red", "idle", 0), &Default::default()), None);
    }
}
