//! The golden fixtures (`fixtures/render/CASE/input.json`: inspect-shaped containers, optional
//! state and settings), read and prepared the one way every test renders them
//! (tests/golden.rs, tests/redis_sink.rs).

use std::fs;
use std::path::{Path, PathBuf};

use pointsman::core::container::Container;
use pointsman::core::model::Fleet;
use pointsman::core::ops::{self, Seeding};
use pointsman::core::settings::Settings;
use pointsman::core::state::{Actor, State};

#[derive(serde::Deserialize)]
pub struct Input {
    #[serde(default)]
    pub settings: InputSettings,
    #[serde(default)]
    pub state: Option<State>,
    pub containers: Vec<Container>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct InputSettings {
    label_prefix: Option<String>,
    entrypoints: Option<Vec<String>>,
    preview_entrypoint: Option<String>,
    network: Option<String>,
    #[serde(default)]
    allow_catch_all: bool,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    mirror_max_body: Option<u64>,
}

/// A fixture ready to render: its settings, fleet, and the state after seeding (at the epoch,
/// by the controller, with the host-claim index), and what seeding reported.
pub struct Prepared {
    pub settings: Settings,
    pub fleet: Fleet,
    pub state: State,
    pub seeding: Seeding,
}

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/render")
}

/// Every case directory, sorted.
pub fn cases() -> Vec<PathBuf> {
    let root = root();
    let mut cases: Vec<PathBuf> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    assert!(cases.len() >= 10, "fixtures are missing under {}", root.display());
    cases
}

pub fn load(case: &Path) -> Input {
    serde_json::from_slice(&fs::read(case.join("input.json")).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()))
}

pub fn prepare(input: &Input) -> Prepared {
    let d = Settings::default();
    let settings = Settings {
        label_prefix: input.settings.label_prefix.clone().unwrap_or(d.label_prefix),
        entrypoints: input.settings.entrypoints.clone().unwrap_or(d.entrypoints),
        preview_entrypoint: input.settings.preview_entrypoint.clone(),
        network: input.settings.network.clone(),
        allow_catch_all: input.settings.allow_catch_all,
        allowed_hosts: input.settings.allowed_hosts.clone(),
        mirror_max_body: input.settings.mirror_max_body.unwrap_or(d.mirror_max_body),
        ..d
    };
    let fleet = Fleet::build(&input.containers, &settings);
    let mut state = input.state.clone().unwrap_or_default();
    let seeding = ops::seed(&mut state, &fleet, jiff::Timestamp::UNIX_EPOCH, Actor::Controller);
    state.claims = fleet.claims();
    Prepared {
        settings,
        fleet,
        state,
        seeding,
    }
}
