//! pointsman against a real Docker Engine and a real Traefik 3.7.
//!
//! Each test gets its own label prefix (so controllers of parallel tests never see each
//! other's containers), its own dynamic directory and its own Traefik on free loopback ports.
//! Containers are `pointsman-demo:dev`, which answers `SLOT VERSION` and has a Docker
//! healthcheck that `docker exec C /pointsman-demo fail|recover` flips.
//! These tests fail, never skip, when Docker, the images or Traefik are missing.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::harness::{APP, HOST, Harness, SETTLE, describe};
use support::{Docker, Load, Traefik, wait_until};

/// Every test here also routes the candidate on Traefik's `preview` entrypoint and resyncs
/// every 30 s.
fn harness(test: &str) -> Harness {
    Harness::builder(test)
        .preview_entrypoint("preview")
        .controller_args(&["--resync-interval", "30"])
        .start()
}

fn cookie(value: &str) -> (&'static str, String) {
    ("Cookie", format!("session=abc; pointsman-{APP}={value}"))
}

/// The blue (stable) / green (candidate) pair every test starts from, served through Traefik.
fn blue_green(h: &Harness) -> (String, String) {
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", Some("candidate"), "v2");
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    h.wait_public(&[], "blue v1");
    h.wait_public(&[("X-Pointsman-Version", "candidate")], "green v2");
    (blue, green)
}

// 6a
#[test]
fn stable_is_public_and_candidate_only_by_cookie_header_or_preview_entrypoint() {
    let h = harness("routes");
    blue_green(&h);
    for _ in 0..20 {
        assert_eq!(h.public(&[]), "blue v1", "public traffic reaches only the stable slot");
    }
    let (k, v) = cookie("candidate");
    assert_eq!(h.public(&[(k, &v)]), "green v2");
    assert_eq!(h.public(&[("X-Pointsman-Version", "candidate")]), "green v2");
    wait_until("preview entrypoint serves the candidate", SETTLE, || {
        (h.preview() == "green v2").then_some(())
    });
    // A cookie value naming a slot reaches that slot; a near miss does not.
    let (k, v) = cookie("blue");
    assert_eq!(h.public(&[(k, &v)]), "blue v1");
    let (k, v) = cookie("green");
    assert_eq!(h.public(&[(k, &v)]), "green v2");
    let (k, v) = cookie("greenish");
    assert_eq!(h.public(&[(k, &v)]), "blue v1");
    assert_eq!(h.public(&[("Cookie", "pointsman-other=candidate")]), "blue v1");
    // Another host is not routed at all.
    assert_eq!(describe(h.traefik.get("other.test", "/", &[])), "HTTP 404");
}

// 6b
#[test]
fn promote_moves_every_new_request_and_rollback_moves_them_back() {
    let h = harness("promote");
    blue_green(&h);
    std::thread::sleep(Duration::from_millis(2100)); // past Traefik's throttle window
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 4);
    wait_until("load flowing", SETTLE, || (load.sent() > 50).then_some(()));

    let out = h.cli_ok(&["promote", APP]);
    assert!(out.contains("slot green is now stable (was blue)"), "{out}");
    let switched = Instant::now();
    h.wait_public(&[], "green v2");
    eprintln!("promote visible through Traefik after {:?}", switched.elapsed());
    for _ in 0..20 {
        assert_eq!(
            h.public(&[]),
            "green v2",
            "after the switch every new request goes to green"
        );
    }
    // The former stable is now the candidate and still reachable.
    assert_eq!(h.public(&[("X-Pointsman-Version", "candidate")]), "blue v1");

    std::thread::sleep(Duration::from_millis(2100));
    let out = h.cli_ok(&["rollback", APP]);
    assert!(out.contains("slot blue is now stable (was green)"), "{out}");
    h.wait_public(&[], "blue v1");
    for _ in 0..20 {
        assert_eq!(h.public(&[]), "blue v1");
    }
    let stats = load.stop();
    assert_eq!(
        stats.failures(),
        0,
        "no request failed during promote and rollback: {stats:?}"
    );
    assert!(
        stats.bodies.contains_key("green v2\n") && stats.bodies.contains_key("blue v1\n"),
        "{stats:?}"
    );

    let history = h.cli_ok(&["history", "--json"]);
    let history: Vec<serde_json::Value> = serde_json::from_str(&history).unwrap();
    let actions: Vec<&str> = history.iter().map(|t| t["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["seed", "promote", "rollback"]);
    assert_eq!(history[1]["by"], "cli");
    assert_eq!(history[0]["by"], "controller");
}

// 6c
#[test]
fn promote_refuses_an_unhealthy_candidate_unless_forced() {
    let h = harness("gate");
    let (_, green) = blue_green(&h);
    Docker::run(&["exec", &green, "/pointsman-demo", "fail"]);
    wait_until("green unhealthy", SETTLE, || {
        (Docker::health(&green).as_deref() == Some("unhealthy")).then_some(())
    });

    let out = h.cli(&["promote", APP]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "refused: {stderr}");
    assert!(
        stderr.contains("slot green") && stderr.contains("unhealthy") && stderr.contains("--force"),
        "{stderr}"
    );
    assert_eq!(h.stable().as_deref(), Some("blue"), "a refused promote changes nothing");
    assert_eq!(h.public(&[]), "blue v1");

    let out = h.cli_ok(&["promote", APP, "--force"]);
    assert!(out.contains("slot green is now stable"), "{out}");
    assert_eq!(h.stable().as_deref(), Some("green"));
    // Forced onto a slot with no healthy server: Traefik answers 503 (empty list), not 404.
    h.wait_public(&[], "HTTP 503");

    // An unknown app is refused too, naming it.
    let out = h.cli(&["promote", "nosuchapp"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown app nosuchapp"));
}

// 6d
#[test]
fn stopped_or_unhealthy_containers_leave_the_server_list_and_come_back() {
    let h = harness("servers");
    let one = h.deploy("blue-1", "blue", Some("stable"), "r1");
    let two = h.deploy("blue-2", "blue", Some("stable"), "r2");
    h.start_controller();
    h.wait_healthy(&one);
    h.wait_healthy(&two);
    let (ip1, ip2) = (Docker::ip(&one), Docker::ip(&two));
    let servers = |h: &Harness| -> (bool, bool) {
        let f = h.file();
        (
            f.contains(&format!("http://{ip1}:80")),
            f.contains(&format!("http://{ip2}:80")),
        )
    };
    wait_until("both replicas routed", SETTLE, || {
        (servers(&h) == (true, true)).then_some(())
    });
    let seen = |h: &Harness| -> std::collections::BTreeSet<String> { (0..30).map(|_| h.public(&[])).collect() };
    wait_until("traffic spread over both replicas", SETTLE, || {
        (seen(&h).len() == 2).then_some(())
    });

    Docker::run(&["exec", &two, "/pointsman-demo", "fail"]);
    wait_until("unhealthy replica removed", SETTLE, || {
        (servers(&h) == (true, false)).then_some(())
    });
    wait_until("only r1 answers", SETTLE, || {
        (seen(&h) == ["blue r1".to_string()].into()).then_some(())
    });

    Docker::run(&["exec", &two, "/pointsman-demo", "recover"]);
    wait_until("recovered replica back", SETTLE, || {
        (servers(&h) == (true, true)).then_some(())
    });

    Docker::run(&["stop", "-t", "1", &one]);
    wait_until("stopped replica removed", SETTLE, || {
        (servers(&h).1 && !h.file().contains(&format!("http://{ip1}:80"))).then_some(())
    });
    wait_until("only r2 answers", SETTLE, || {
        (seen(&h) == ["blue r2".to_string()].into()).then_some(())
    });

    Docker::run(&["start", &one]);
    h.wait_healthy(&one);
    let ip1 = Docker::ip(&one);
    wait_until("restarted replica back", SETTLE, || {
        h.file().contains(&format!("http://{ip1}:80")).then_some(())
    });
    wait_until("both answer again", SETTLE, || (seen(&h).len() == 2).then_some(()));
}

// 6e
#[test]
fn roles_survive_sigkill_and_a_relabel_made_while_the_controller_was_down() {
    let h = harness("sigkill");
    let (blue, _) = blue_green(&h);
    h.cli_ok(&["promote", APP]);
    h.wait_public(&[], "green v2");

    let status = h.signal_controller("KILL");
    assert!(!status.success());
    // The CLI works without a controller: relabel back to blue by container name.
    let out = h.cli_ok(&["relabel", &blue, "version=stable"]);
    assert!(out.contains("slot blue is now stable (was green)"), "{out}");
    h.wait_public(&[], "blue v1");

    h.start_controller();
    wait_until("controller synced", SETTLE, || {
        h.controller_log().contains("synced with Docker").then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        h.stable().as_deref(),
        Some("blue"),
        "the restarted controller keeps every role"
    );
    assert_eq!(h.state()["apps"][APP]["previous"], "green");
    for _ in 0..10 {
        assert_eq!(h.public(&[]), "blue v1");
    }
    // A graceful stop leaves the files alone.
    let before = h.file();
    let status = h.signal_controller("TERM");
    assert!(status.success(), "SIGTERM is a clean exit: {status}");
    assert_eq!(h.file(), before);
    assert_eq!(
        h.public(&[]),
        "blue v1",
        "Traefik keeps routing while pointsman is down"
    );
}

// 6f
#[test]
fn a_cli_relabel_made_while_the_controller_runs_is_never_overwritten() {
    let h = harness("concurrent");
    blue_green(&h);
    h.cli_ok(&["relabel", &format!("{APP}/green"), "version=stable"]);
    h.wait_public(&[], "green v2");
    // Make the controller render several times: churn a third slot.
    for i in 0..3 {
        let c = h.deploy(&format!("red-{i}"), "red", Some("stable"), "v3");
        h.wait_healthy(&c);
        wait_until("controller saw red", SETTLE, || {
            h.file().contains("web.slot.red").then_some(())
        });
        Docker::run(&["rm", "-f", &c]);
        wait_until("controller saw red leave", SETTLE, || {
            (!h.file().contains("web.slot.red")).then_some(())
        });
        assert_eq!(h.stable().as_deref(), Some("green"));
        assert_eq!(h.public(&[]), "green v2");
    }
    let log = h.controller_log();
    assert!(
        log.contains("is labelled stable but green is the stable slot"),
        "the overruled label is logged:\n{log}"
    );
    // The controller catches up with the last removal (die, then destroy) on its own.
    wait_until("no drift", SETTLE, || {
        h.cli(&["render", "--check"]).status.success().then_some(())
    });
}

// 6g
#[test]
fn a_recreated_idle_slot_stays_candidate_whatever_its_label_says() {
    let h = harness("redeploy");
    let (_, green) = blue_green(&h);
    std::thread::sleep(Duration::from_millis(2100));
    let load = Load::start(h.traefik.web_addr(), HOST, "/", &[], 2);
    wait_until("load flowing", SETTLE, || (load.sent() > 20).then_some(()));

    Docker::run(&["rm", "-f", &green]);
    let green = h.deploy("green-v3", "green", Some("stable"), "v3");
    h.wait_healthy(&green);
    h.wait_public(&[("X-Pointsman-Version", "candidate")], "green v3");
    std::thread::sleep(Duration::from_millis(300));
    let stats = load.stop();
    assert_eq!(stats.failures(), 0, "{stats:?}");
    assert_eq!(
        stats.bodies.keys().collect::<Vec<_>>(),
        ["blue v1\n"],
        "public traffic never moved while green was redeployed"
    );
    assert_eq!(h.stable().as_deref(), Some("blue"));
    let status = h.cli_ok(&["status", APP]);
    assert!(status.contains("stable=blue candidate=green"), "{status}");
}

#[test]
fn a_corrupt_state_file_stops_pointsman_with_exit_2_naming_the_file() {
    let h = harness("corrupt");
    let state = h.dir.join(".pointsman/state.json");
    fs::create_dir_all(state.parent().unwrap()).unwrap();
    fs::write(&state, "{\"format\": 1, \"apps\": {\"web\": {\"stable\": ").unwrap();
    fs::write(h.dir.join("pointsman-web.yml"), "http: {}\n").unwrap();
    for args in [vec!["run"], vec!["history"], vec!["promote", APP], vec!["render"]] {
        let out = h.cli(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&state.display().to_string()) && stderr.contains("corrupt"),
            "{args:?}: {stderr}"
        );
    }
    assert_eq!(
        fs::read_to_string(h.dir.join("pointsman-web.yml")).unwrap(),
        "http: {}\n",
        "config untouched"
    );
    assert!(
        fs::read_to_string(&state).unwrap().ends_with("\"stable\": "),
        "state untouched"
    );
}

#[test]
fn every_golden_file_is_accepted_by_traefik() {
    // Each expected file of the golden fixtures, loaded by a real Traefik: every router must
    // be enabled, so pointsman never writes a file Traefik rejects.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/render");
    let dir = support::temp_dir("golden-traefik");
    let mut expected_routers = Vec::new();
    for case in fs::read_dir(&fixtures).unwrap().map(|e| e.unwrap().path()) {
        for f in fs::read_dir(case.join("expected")).unwrap().map(|e| e.unwrap().path()) {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".yml") {
                continue;
            }
            // Router names are global in Traefik: prefix them per case.
            let tag = case.file_name().unwrap().to_string_lossy().replace(['-', '_', '.'], "");
            let doc: serde_json::Value =
                serde_json::from_str(fs::read_to_string(&f).unwrap().split_once('\n').unwrap().1).unwrap();
            let mut renamed = serde_json::json!({"http": {"routers": {}, "services": {}}});
            for (r, v) in doc["http"]["routers"].as_object().unwrap() {
                let mut v = v.clone();
                v["service"] = format!("{tag}-{}", v["service"].as_str().unwrap()).into();
                v["entryPoints"] = serde_json::json!(["web"]);
                renamed["http"]["routers"][format!("{tag}-{r}")] = v;
                expected_routers.push(format!("{tag}-{r}@file"));
            }
            for (s, v) in doc["http"]["services"].as_object().unwrap() {
                // Services that refer to services (weighted children, mirroring) follow the rename.
                let mut v = v.clone();
                let tagged = |n: &serde_json::Value| serde_json::Value::from(format!("{tag}-{}", n.as_str().unwrap()));
                if let Some(w) = v.get_mut("weighted") {
                    for child in w["services"].as_array_mut().into_iter().flatten() {
                        child["name"] = tagged(&child["name"]);
                    }
                }
                if let Some(m) = v.get_mut("mirroring") {
                    m["service"] = tagged(&m["service"]);
                    for mirror in m["mirrors"].as_array_mut().into_iter().flatten() {
                        mirror["name"] = tagged(&mirror["name"]);
                    }
                }
                renamed["http"]["services"][format!("{tag}-{s}")] = v;
            }
            fs::write(
                dir.join(format!("{tag}-{name}")),
                serde_json::to_string_pretty(&renamed).unwrap(),
            )
            .unwrap();
        }
    }
    assert!(expected_routers.len() > 20);
    let traefik = Traefik::start(&dir);
    let routers = wait_until("Traefik loaded every router", SETTLE, || {
        let routers = traefik.api_json("/api/http/routers?per_page=1000")?;
        let names: Vec<String> = routers
            .as_array()?
            .iter()
            .filter_map(|r| r["name"].as_str().map(String::from))
            .collect();
        expected_routers.iter().all(|r| names.contains(r)).then_some(routers)
    });
    for r in routers.as_array().unwrap() {
        if expected_routers.iter().any(|e| r["name"] == e.as_str()) {
            assert_eq!(
                r["status"],
                "enabled",
                "Traefik rejected {}: {r}\n{}",
                r["name"],
                traefik.log()
            );
        }
    }
}

/// A tmpfs of `size` mounted at `dir` for the test's lifetime (root only: CI runs as root).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "mounting a tmpfs needs root; these tests run as root in CI"
        );
        Tmpfs(dir.to_path_buf())
    }

    fn remount_read_only(&self) {
        assert!(
            Command::new("mount")
                .args(["-o", "remount,ro"])
                .arg(&self.0)
                .status()
                .unwrap()
                .success()
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn fill(path: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![b'x'; 4096];
    while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
}

#[test]
fn a_full_or_read_only_directory_is_a_clear_error_and_the_old_file_keeps_serving() {
    let mut h = harness("diskfull");
    // Swap the harness's directory for a small tmpfs that Traefik watches instead.
    let mount = Tmpfs::mount(&h.dir.parent().unwrap().join("small"), "256k");
    h.dir = mount.0.clone();
    h.traefik = Traefik::start(&h.dir);
    blue_green(&h);
    h.signal_controller("TERM");
    let before_file = h.file();
    let before_state = fs::read(h.dir.join(".pointsman/state.json")).unwrap();

    fill(&h.dir.join(".pointsman/filler"));
    let out = h.cli(&["promote", APP]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains(&h.dir.display().to_string()),
        "{stderr}"
    );
    assert_eq!(h.file(), before_file, "the serving file is untouched");
    assert_eq!(
        fs::read(h.dir.join(".pointsman/state.json")).unwrap(),
        before_state,
        "roles unchanged"
    );
    assert_eq!(h.public(&[]), "blue v1");
    let leftovers: Vec<_> = fs::read_dir(h.dir.join(".pointsman"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        !leftovers.iter().any(|n| n.to_string_lossy().ends_with(".tmp")),
        "no temp file left: {leftovers:?}"
    );

    // The controller keeps serving the old file and says why it cannot write.
    h.start_controller();
    Docker::run(&["stop", "-t", "1", &h.name("green")]);
    wait_until("controller reports the write error", SETTLE, || {
        h.controller_log().contains("No space left on device").then_some(())
    });
    assert_eq!(h.public(&[]), "blue v1");
    // Space comes back: the controller converges on its own (it retries every second).
    fs::remove_file(h.dir.join(".pointsman/filler")).unwrap();
    wait_until("controller rewrote the file", SETTLE, || {
        (!h.file().contains("web.slot.green")).then_some(())
    });
    h.signal_controller("TERM");

    let before_file = h.file();
    mount.remount_read_only();
    let out = h.cli(&["relabel", &format!("{APP}/blue"), "version=candidate"]);
    assert_eq!(out.status.code(), Some(1), "refusals come before any write");
    let out = h.cli(&["promote", APP, "--force"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert_eq!(h.file(), before_file);
    assert_eq!(h.public(&[]), "blue v1");
}

#[test]
fn a_broken_foreign_file_is_reported_by_status_and_the_controller() {
    let h = harness("foreign");
    blue_green(&h);
    fs::write(h.dir.join("middlewares.yml"), "http:\n  middlewares: [\n").unwrap();
    let status = h.cli_ok(&["status"]);
    assert!(
        status.contains("middlewares.yml is not a file Traefik can load") && status.contains("ignores every change"),
        "{status}"
    );
    // The controller notices on its next render.
    Docker::run(&["exec", &h.name("green"), "/pointsman-demo", "fail"]);
    wait_until("controller warns", SETTLE, || {
        h.controller_log()
            .contains("middlewares.yml is not a file Traefik can load")
            .then_some(())
    });
    // And the warning is true: Traefik now ignores pointsman's change (green left the pool).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        h.public(&[("X-Pointsman-Version", "candidate")]),
        "green v2",
        "Traefik kept its old config"
    );
    fs::remove_file(h.dir.join("middlewares.yml")).unwrap();
    let status = h.cli_ok(&["status"]);
    assert!(!status.contains("middlewares.yml"), "{status}");
}

/// Issue 8.10, as a new user would try it: `pointsman run --preview-entrypoint preview` in one
/// shell, `pointsman promote web` (no flags) in another. The settings that shape the files are
/// recorded with the state, so the CLI renders the preview router the controller renders.
#[test]
fn a_cli_call_without_the_controllers_flags_renders_what_the_controller_renders() {
    // No preview entrypoint in the environment: only the controller is given the flag.
    let h = Harness::builder("settings").start();
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let green = h.deploy("green", "green", None, "v2");
    h.start_controller_with(&["--preview-entrypoint", "preview"]);
    h.wait_healthy(&blue);
    h.wait_healthy(&green);
    wait_until("the preview entrypoint serves green", SETTLE, || {
        (h.preview() == "green v2").then_some(())
    });
    // Only the CLI writes from here on.
    h.signal_controller("TERM");
    let preview_router = format!("\"{APP}.preview\"");

    let out = h.cli_ok(&["promote", APP]);
    assert!(out.contains("slot green is now stable"), "{out}");
    assert!(
        h.file().contains(&preview_router),
        "the CLI kept the preview router:\n{}",
        h.file()
    );
    wait_until("the preview entrypoint serves the new candidate, blue", SETTLE, || {
        (h.preview() == "blue v1").then_some(())
    });

    // A flag that contradicts the recorded settings is refused, names itself, and changes nothing.
    let (file, state) = (h.file(), h.state());
    let out = h.cli(&["--preview-entrypoint", "other", "rollback", APP]);
    let text = support::harness::output_text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("--preview-entrypoint other contradicts the recorded preview") && text.contains("--reconfigure"),
        "{text}"
    );
    assert_eq!((h.file(), h.state()), (file, state), "nothing changed");

    // --reconfigure records the new choice; every writer uses it from then on.
    h.cli_ok(&["--preview-entrypoint", "", "--reconfigure", "rollback", APP]);
    assert!(!h.file().contains(&preview_router), "{}", h.file());
    h.cli_ok(&["promote", APP]);
    assert!(!h.file().contains(&preview_router), "{}", h.file());

    // The controller restarted with its old flag says so instead of flapping the files.
    let mut child = h
        .command(&["run", "--preview-entrypoint", "preview"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_until("the conflicting controller exits", SETTLE, || child.try_wait().unwrap());
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("--preview-entrypoint preview contradicts the recorded none"),
        "{err}"
    );
    // Without the flag it runs with the recorded settings and leaves the file as the CLI wrote it.
    let file = h.file();
    h.start_controller();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(h.file(), file);
}

/// Issue 16: neighbours whose names and hosts are as close to web's as they can be. Under the
/// old names an app called `web-slot-blue` or `web-primary` produced one of web's router or
/// service names and Traefik kept whichever came first; a trailing dot, an upper-case host, a
/// wildcard or a regexp claimed web's host without being seen as a claim; a padded catch-all
/// outranked web by rule length. Now each neighbour is either refused (naming web) or routed
/// on its own host only, and web keeps every request through a canary and a mirror.
#[test]
fn no_neighbours_labels_take_an_apps_traffic_in_canary_or_mirror() {
    let h = harness("integrity");
    blue_green(&h);
    let pad = format!(" && !Path(`/{}`)", "p".repeat(200));
    // (app, rule, why it is refused; None: accepted on its own host), each a separate app
    // started after web, so web is older.
    const HOST_TAKEN: Option<&str> = Some("already served by app web");
    const CATCH_ALL: Option<&str> = Some("--allow-catch-all");
    let neighbours: Vec<(&str, String, Option<&str>)> = vec![
        ("web-slot-blue", "Host(`n1.test`)".into(), None),
        ("web-slot-green", "Host(`n2.test`)".into(), None),
        ("web-primary", "Host(`n3.test`)".into(), None),
        ("web-candidate", "Host(`n4.test`)".into(), None),
        ("web-canary", "Host(`n5.test`)".into(), None),
        ("web-preview", "Host(`n6.test`)".into(), None),
        ("dot", format!("Host(`{HOST}.`){pad}"), HOST_TAKEN),
        ("upper", format!("Host(`WEB.Test`){pad}"), HOST_TAKEN),
        ("port", format!("Host(`{HOST}:80`){pad}"), HOST_TAKEN),
        ("wild", format!("Host(`*.test`){pad}"), HOST_TAKEN),
        ("rx", format!("HostRegexp(`^w.b\\.test$`){pad}"), HOST_TAKEN),
        ("rxall", format!("HostRegexp(`.+`){pad}"), CATCH_ALL),
        ("orall", format!("Host(`n13.test`) || PathPrefix(`/`){pad}"), CATCH_ALL),
        ("negall", format!("!Host(`n14.test`){pad}"), CATCH_ALL),
    ];
    let mut containers = Vec::new();
    for (i, (app, rule, _)) in neighbours.iter().enumerate() {
        // Every neighbour also names web's slots, so its slot routers read the same cookies.
        let slot = if i % 2 == 0 { "blue" } else { "green" };
        containers.push(h.deploy_labels(
            &format!("n{}", i + 1),
            &[("app", app), ("rule", rule), ("slot", slot), ("version", "stable")],
            slot,
            &format!("evil-{app}"),
        ));
    }
    let status = wait_until("every neighbour is routed or refused", SETTLE, || {
        let status = h.cli_ok(&["status"]);
        let done = neighbours
            .iter()
            .zip(&containers)
            .all(|((app, _, refused), c)| match refused {
                Some(why) => status.lines().any(|l| l.contains(c.as_str()) && l.contains(why)),
                None => h.file_of(app).is_some(),
            });
        done.then_some(status)
    });
    for (app, _, refused) in &neighbours {
        assert_eq!(h.file_of(app).is_some(), refused.is_none(), "{app}:\n{status}");
    }
    // The accepted neighbours serve their own hosts, under names of their own.
    for (i, (app, _, refused)) in neighbours.iter().enumerate() {
        if refused.is_none() {
            let host = format!("n{}.test", i + 1);
            wait_until(&format!("{app} on {host}"), SETTLE, || {
                h.traefik
                    .get(&host, "/", &[])
                    .ok()
                    .filter(|r| r.body.contains("evil"))
                    .map(|_| ())
            });
        }
    }

    let victim = |what: &str| {
        let mut seen = std::collections::BTreeMap::<String, usize>::new();
        for i in 0..60 {
            let host = if i % 3 == 0 {
                format!("{HOST}.")
            } else if i % 3 == 1 {
                HOST.to_uppercase()
            } else {
                HOST.to_string()
            };
            let body = describe(h.traefik.get(&host, "/", &[]));
            *seen.entry(body).or_default() += 1;
        }
        let foreign: usize = seen
            .iter()
            .filter(|(b, _)| !(b.starts_with("blue v1") || b.starts_with("green v2")))
            .map(|(_, n)| n)
            .sum();
        eprintln!("{what}: {seen:?}");
        assert_eq!(foreign, 0, "{what}: a neighbour answered web's requests: {seen:?}");
        seen
    };
    let api = h.traefik.api_url();
    h.cli_ok(&["--traefik-api", &api, "canary", APP, "10", "--wait"]);
    let seen = victim("canary 10");
    assert!(
        seen.keys().any(|b| b.starts_with("green")),
        "the canary reaches green: {seen:?}"
    );
    h.cli_ok(&["--traefik-api", &api, "mirror", APP, "20", "--wait"]);
    victim("canary 10 + mirror 20");
    h.cli_ok(&["--traefik-api", &api, "abort", APP, "--wait"]);
    h.cli_ok(&["--traefik-api", &api, "mirror", APP, "20", "--wait"]);
    let seen = victim("mirror 20");
    assert_eq!(seen.keys().collect::<Vec<_>>(), ["blue v1"], "{seen:?}");
    // Preview cookies and headers still reach web's own slots, not a neighbour's.
    let (k, v) = cookie("green");
    assert_eq!(h.public(&[(k, &v)]), "green v2");
    assert_eq!(h.public(&[("X-Pointsman-Version", "candidate")]), "green v2");
}

/// Issue 16.2: with `--allow-catch-all`, a catch-all padded to the longest rule pointsman
/// accepts still sits below every host-bound router: Traefik's default priority (the rule's
/// length) would have let it take web's requests; explicit priorities by class do not.
#[test]
fn an_allowed_catch_all_never_outranks_a_host_bound_app() {
    let h = Harness::builder("catchall")
        .controller_args(&["--allow-catch-all"])
        .start();
    let blue = h.deploy("blue", "blue", Some("stable"), "v1");
    let pad = "p".repeat(3900);
    let any = h.deploy_labels(
        "any",
        &[
            ("app", "any"),
            ("rule", &format!("PathPrefix(`/`) && !Path(`/{pad}`)")),
            ("version", "stable"),
        ],
        "any",
        "catch-all",
    );
    h.start_controller();
    h.wait_healthy(&blue);
    h.wait_healthy(&any);
    wait_until("the catch-all serves other hosts", SETTLE, || {
        h.traefik
            .get("elsewhere.test", "/", &[])
            .ok()
            .filter(|r| r.body.contains("catch-all"))
            .map(|_| ())
    });
    h.wait_public(&[], "blue v1");
    for host in [HOST.to_string(), format!("{HOST}."), HOST.to_uppercase()] {
        for _ in 0..20 {
            assert_eq!(describe(h.traefik.get(&host, "/", &[])), "blue v1", "{host}");
        }
    }
    // Its candidate cookie does not reach it on web's host either.
    assert_eq!(
        h.public(&[("Cookie", "pointsman-any=candidate"), ("X-Pointsman-Version", "any")]),
        "blue v1"
    );
}
