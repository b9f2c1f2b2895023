//! Who may join an app (`--admit compose-project`), against a real Docker Engine and a real
//! Traefik 3.7: a container of another Compose project labelled for a seeded app is refused
//! with the owner named, and the owner keeps all of the app's traffic through Traefik. These
//! tests fail, never skip, when Docker, the images or Traefik are missing.

mod support;

use support::Docker;
use support::harness::{APP, Harness, SETTLE};
use support::wait_until;

/// A demo container of [`APP`] whose Compose project label is `project`.
fn deploy_in(h: &Harness, project: &str, name: &str, slot: &str, version_label: &str, version: &str) -> String {
    let mut args = h.demo_args(name, slot, Some(version_label), version);
    let image = args.pop().expect("the image is last");
    args.extend(["--label".into(), format!("com.docker.compose.project={project}")]);
    args.push(image);
    Docker::run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    h.name(name)
}

#[test]
fn a_container_of_another_compose_project_cannot_join_a_seeded_app() {
    let h = Harness::builder("admit-project")
        .env("POINTSMAN_ADMIT", "compose-project")
        .start();
    let blue = deploy_in(&h, "shop", "blue", "blue", "stable", "v1");
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_public(&[], "blue v1");
    let state = h.state();
    assert_eq!(state["apps"][APP]["owner"]["project"], "shop", "{state}");
    assert_eq!(state["settings"]["admit"], "compose-project", "{state}");

    // The intruder: another project, labelled stable, on the same app and host; and one that
    // joins as a candidate, which would get the preview cookie's traffic.
    let evil = deploy_in(&h, "evil", "evil", "evil", "stable", "evil");
    let sneaky = deploy_in(&h, "evil", "sneaky", "sneaky", "candidate", "evil");
    h.wait_healthy(&evil);
    h.wait_healthy(&sneaky);
    let refusal = wait_until("the controller refuses the intruders", SETTLE, || {
        let log = h.controller_log();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("belongs to Compose project shop"))
            .map(String::from)
            .collect();
        (lines.iter().any(|l| l.contains(&evil)) && lines.iter().any(|l| l.contains(&sneaky))).then_some(lines)
    });
    for line in &refusal {
        assert!(
            line.contains("com.docker.compose.project")
                && line.contains(&format!("app {APP}"))
                && line.contains("deploy it from that Compose project")
                && line.contains("--admit any"),
            "{line}"
        );
    }
    // Let Traefik pick up whatever the controller wrote (its throttle is 2 s).
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let file = h.file();
    let (evil_ip, sneaky_ip) = (Docker::ip(&evil), Docker::ip(&sneaky));
    assert!(
        !file.contains(&format!("http://{evil_ip}:")) && !file.contains(&format!("http://{sneaky_ip}:")),
        "no intruder server in the file: {file}"
    );
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..100 {
        let headers: &[(&str, &str)] = match i % 4 {
            0 => &[],
            1 => &[("X-Pointsman-Version", "candidate")],
            2 => &[("Cookie", "pointsman-web=candidate")],
            _ => &[("X-Pointsman-Version", "evil")],
        };
        *answers.entry(h.public(headers)).or_default() += 1;
    }
    assert_eq!(
        answers,
        std::collections::BTreeMap::from([("blue v1".to_string(), 100)]),
        "the owner keeps 100 % of the requests"
    );
    assert_eq!(h.stable().as_deref(), Some("blue"));

    // The status command (another writer) admits the same containers as the controller.
    let out = h.cli(&["status", APP]);
    let text = support::harness::output_text(&out);
    assert!(
        text.contains(&evil) && text.contains("belongs to Compose project shop"),
        "{text}"
    );
    assert!(!text.contains("sneaky v") && !text.contains(&sneaky_ip), "{text}");

    // A teammate from the owner's project joins as usual.
    let green = deploy_in(&h, "shop", "green", "green", "candidate", "v2");
    h.wait_healthy(&green);
    h.wait_public(&[("X-Pointsman-Version", "candidate")], "green v2");
    assert_eq!(h.public(&[]), "blue v1");
}
