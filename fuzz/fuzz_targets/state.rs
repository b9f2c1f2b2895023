//! The state file (and the Redis state key, which holds the same JSON): any bytes parse and
//! validate to a state or to an error, never a panic; a state that passes validation is safe
//! for everything that reads it: status figures, rendering its apps, a rollout's next step,
//! writing it back.
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pointsman::backend::dir::parse_state;
use pointsman::core::container::{Container, ContainerConfig, ContainerState, Endpoint, NetworkSettings};
use pointsman::core::model::Fleet;
use pointsman::core::ops::{self, Context, Judgement, Operation};
use pointsman::core::render;
use pointsman::core::state::Actor;

/// A running container of `app`'s `slot`.
fn container(i: usize, app: &str, slot: &str) -> Container {
    Container {
        id: format!("{i:064x}"),
        name: format!("/c{i}"),
        created: "2024-01-01T00:00:00Z".into(),
        state: ContainerState {
            status: "running".into(),
            running: true,
            started_at: "2024-01-01T00:00:00Z".into(),
            ..Default::default()
        },
        config: ContainerConfig {
            labels: Some(BTreeMap::from([
                ("pointsman.app".to_string(), app.to_string()),
                ("pointsman.slot".to_string(), slot.to_string()),
                ("pointsman.host".to_string(), format!("{app}.example.com")),
                ("pointsman.port".to_string(), "80".to_string()),
            ])),
            exposed_ports: None,
        },
        network_settings: NetworkSettings {
            networks: Some(BTreeMap::from([(
                "front".to_string(),
                Endpoint {
                    ip_address: format!("10.0.{}.{}", i / 200, i % 200 + 1),
                },
            )])),
            ports: None,
        },
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut state) = parse_state(Path::new("state.json"), data) else { return };
    let settings = state.settings.effective();
    // Containers for the slots the state names, so rendering uses its roles and shares.
    let mut containers = Vec::new();
    for (app, roles) in state.apps.iter().take(4) {
        let slots = [&roles.stable, &roles.pinned, &roles.previous]
            .into_iter()
            .flatten()
            .chain(roles.canary.iter().map(|s| &s.slot))
            .chain(roles.mirror.iter().map(|s| &s.slot))
            .chain(roles.rollout.iter().map(|r| &r.slot));
        for slot in slots.take(6) {
            containers.push(container(containers.len(), app, slot));
        }
    }
    let fleet = Fleet::build(&containers, &settings);
    let now = jiff::Timestamp::UNIX_EPOCH;
    ops::seed(&mut state, &fleet, now, Actor::Controller);
    let _ = render::render_all(&fleet, &state, &settings);
    let ctx = Context {
        now,
        by: Actor::Controller,
        app_label: "pointsman.app",
    };
    let apps: Vec<String> = state.apps.keys().take(4).cloned().collect();
    for app in apps {
        if let Some(r) = &state.apps[&app].rollout {
            let _ = (r.weight(), r.is_last_step(), r.pause());
        }
        for judgement in [
            Judgement::Pass("passed".into()),
            Judgement::NotEnough("quiet".into()),
            Judgement::Breach("errors".into()),
        ] {
            let judge = Operation::Judge {
                app: app.clone(),
                judgement,
            };
            let mut next = state.clone();
            // A rollout driven to its end: every step, then the promotion.
            for _ in 0..4 {
                let _ = ops::apply(&judge, &fleet, &mut next, ctx);
            }
        }
        let _ = ops::apply(&Operation::Abort { app: app.clone() }, &fleet, &mut state.clone(), ctx);
        let _ = ops::apply(&Operation::Promote { app, force: false }, &fleet, &mut state.clone(), ctx);
    }
    let _ = render::render_all(&fleet, &state, &settings);
    let _ = serde_json::to_vec(&state).expect("a valid state serialises");
});
