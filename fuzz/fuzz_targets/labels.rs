//! Container labels: whatever labels a container carries (one `key=value` a line; a key
//! without a dot gets the `pointsman.` prefix), reading them gives a member or a label error,
//! never a panic, and the fleet built from such containers renders.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use pointsman::core::container::{Container, ContainerConfig, ContainerState, Endpoint, NetworkSettings};
use pointsman::core::labels;
use pointsman::core::model::Fleet;
use pointsman::core::render;
use pointsman::core::settings::Settings;
use pointsman::core::state::State;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // Containers are separated by an empty line.
    let containers: Vec<Container> = text
        .split("\n\n")
        .take(8)
        .enumerate()
        .map(|(i, block)| {
            let labels: BTreeMap<String, String> = block
                .lines()
                .map(|line| {
                    let (k, v) = line.split_once('=').unwrap_or((line, ""));
                    let k = if k.contains('.') { k.to_string() } else { format!("pointsman.{k}") };
                    (k, v.to_string())
                })
                .collect();
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
                    labels: Some(labels),
                    exposed_ports: None,
                },
                network_settings: NetworkSettings {
                    networks: Some(BTreeMap::from([(
                        "front".to_string(),
                        Endpoint {
                            ip_address: format!("10.0.0.{}", i + 1),
                        },
                    )])),
                    ports: None,
                },
                ..Default::default()
            }
        })
        .collect();
    let settings = Settings::default();
    for c in &containers {
        let _ = labels::read(c, &settings);
    }
    let fleet = Fleet::build(&containers, &settings);
    let _ = render::render_all(&fleet, &State::default(), &settings);
});
