//! The demo backend (src/bin/pointsman-demo.rs), its image `pointsman-demo:dev` and the test
//! support code (tests/support) against a real Docker daemon and a real Traefik.
//!
//! Needs: `scripts/build-images.sh` (images) and `scripts/install-traefik.sh` (traefik). The
//! tests fail, not skip, when those are missing.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

const DEMO_BIN: &str = env!("CARGO_BIN_EXE_pointsman-demo");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn demo_cmd(port: u16, health_file: &Path, arg: &str) -> Command {
    let mut c = Command::new(DEMO_BIN);
    c.arg(arg)
        .env("PORT", port.to_string())
        .env("HEALTH_FILE", health_file)
        .stdin(Stdio::null());
    c
}

/// The binary itself, no Docker: responses, keep-alive, health file, `check`, SIGTERM.
#[test]
fn demo_binary_serves_checks_and_stops_on_sigterm() {
    let dir = temp_dir("demo-bin");
    let health_file = dir.join("sub/unhealthy");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = demo_cmd(port, &health_file, "serve")
        .env("SLOT", "blue")
        .env("VERSION", "v7")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let r = wait_for("demo binary to answer", Duration::from_secs(5), || {
        http_get(&addr, "x", "/any/path?q=1", &[])
    });
    assert_eq!((r.status, r.body.as_str()), (200, "blue v7\n"));
    assert_eq!(r.header("x-slot"), Some("blue"));
    assert_eq!(r.header("X-Version"), Some("v7"));
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("connection"), Some("close"), "client asked to close");

    // Keep-alive: several requests on one connection.
    let mut conn = HttpConn::new(&addr);
    for _ in 0..5 {
        let r = conn.get("x", "/", &[]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "blue v7\n"));
        assert_eq!(r.header("connection"), Some("keep-alive"));
    }
    assert_eq!(conn.connects, 1, "keep-alive connection was not reused");

    let health = || http_get(&addr, "x", "/healthz", &[]).unwrap();
    assert_eq!((health().status, health().body.as_str()), (200, "ok\n"));
    assert!(demo_cmd(port, &health_file, "check").status().unwrap().success());

    assert!(demo_cmd(port, &health_file, "fail").status().unwrap().success());
    assert!(health_file.exists(), "fail must create the file and its parent dir");
    assert_eq!(health().status, 503);
    assert_eq!(demo_cmd(port, &health_file, "check").status().unwrap().code(), Some(1));
    assert_eq!(
        http_get(&addr, "x", "/", &[]).unwrap().status,
        200,
        "only /healthz turns 503"
    );

    assert!(demo_cmd(port, &health_file, "recover").status().unwrap().success());
    assert!(
        demo_cmd(port, &health_file, "recover").status().unwrap().success(),
        "recover twice is fine"
    );
    assert_eq!(health().status, 200);

    // `check` against a port nobody listens on fails.
    let closed = free_port();
    assert_eq!(
        demo_cmd(closed, &health_file, "check").status().unwrap().code(),
        Some(1)
    );

    // SIGTERM with an idle keep-alive connection open: prompt, clean exit.
    let mut idle = HttpConn::new(&addr);
    idle.get("x", "/", &[]).unwrap();
    let start = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = wait_until("demo binary to exit after SIGTERM", Duration::from_secs(3), || {
        child.try_wait().unwrap()
    });
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "took {:?} to stop",
        start.elapsed()
    );
}

fn docker_health(c: &str) -> Result<(), String> {
    match Docker::health(c).as_deref() {
        Some("healthy") => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

fn docker_unhealthy(c: &str) -> Result<(), String> {
    match Docker::health(c).as_deref() {
        Some("unhealthy") => Ok(()),
        other => Err(format!("{other:?}")),
    }
}

#[test]
fn demo_container_serves_and_its_health_follows_fail_and_recover() {
    Docker::require_image(DEMO_IMAGE);
    let cleanup = Cleanup::for_test("demo-health");
    let name = cleanup.id().to_string();
    let c = Docker::run_demo(&cleanup, &name, &[], &[("SLOT", "green"), ("VERSION", "v3")]);
    let addr = format!("{}:80", Docker::ip(&c));

    let r = wait_for("demo container to answer", Duration::from_secs(10), || {
        http_get(&addr, "demo.test", "/", &[])
    });
    assert_eq!((r.status, r.body.as_str()), (200, "green v3\n"));
    assert_eq!(r.header("X-Slot"), Some("green"));
    let h = http_get(&addr, "demo.test", "/healthz", &[]).unwrap();
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));

    let start = Instant::now();
    wait_for("container to become healthy", Duration::from_secs(10), || {
        docker_health(&c)
    });
    eprintln!("healthy {:?} after the first answer", start.elapsed());

    Docker::run(&["exec", &c, "/pointsman-demo", "fail"]);
    assert_eq!(http_get(&addr, "demo.test", "/healthz", &[]).unwrap().status, 503);
    let start = Instant::now();
    wait_for("container to become unhealthy", Duration::from_secs(5), || {
        docker_unhealthy(&c)
    });
    eprintln!("unhealthy {:?} after fail", start.elapsed());

    Docker::run(&["exec", &c, "/pointsman-demo", "recover"]);
    let start = Instant::now();
    wait_for("container to become healthy again", Duration::from_secs(5), || {
        docker_health(&c)
    });
    eprintln!("healthy {:?} after recover", start.elapsed());

    // SIGTERM as PID 1 works: `docker stop` returns long before its 10 s timeout, exit code 0.
    let start = Instant::now();
    Docker::run(&["stop", "-t", "10", &c]);
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "docker stop took {:?}",
        start.elapsed()
    );
    assert_eq!(Docker::inspect(&c)["State"]["ExitCode"], 0);
}

#[test]
fn demo_slot_defaults_to_the_container_hostname() {
    Docker::require_image(DEMO_IMAGE);
    let cleanup = Cleanup::for_test("demo-host");
    let name = cleanup.id().to_string();
    let c = Docker::run_demo(&cleanup, &name, &[], &[]);
    let hostname = Docker::inspect(&c)["Config"]["Hostname"].as_str().unwrap().to_string();
    let addr = format!("{}:80", Docker::ip(&c));
    let r = wait_for("demo container to answer", Duration::from_secs(10), || {
        http_get(&addr, "x", "/", &[])
    });
    assert_eq!(r.body, format!("{hostname} v1\n"));
}

#[test]
fn traefik_file_provider_routes_to_demo_container() {
    Docker::require_image(DEMO_IMAGE);
    let cleanup = Cleanup::for_test("demo-traefik");
    let name = cleanup.id().to_string();
    let c = Docker::run_demo(&cleanup, &name, &[], &[("SLOT", "blue"), ("VERSION", "v9")]);
    let ip = Docker::ip(&c);
    wait_for("demo container to answer", Duration::from_secs(10), || {
        http_get(&format!("{ip}:80"), "x", "/", &[])
    });

    let dir = temp_dir("demo-traefik-dyn");
    let traefik = Traefik::start(&dir);
    let r = traefik.get("demo.test", "/", &[]).unwrap();
    assert_eq!(r.status, 404, "no route yet; log:\n{}", traefik.log());

    let dynamic = serde_json::json!({
        "http": {
            "routers": {
                "demo": { "rule": "Host(`demo.test`)", "entryPoints": ["web"], "service": "demo" },
                "demo-preview": { "rule": "Host(`demo.test`)", "entryPoints": ["preview"], "service": "demo" },
            },
            "services": {
                "demo": { "loadBalancer": { "servers": [ { "url": format!("http://{ip}:80") } ] } },
            },
        }
    });
    let start = Instant::now();
    write_atomic(&dir.join("demo.yml"), &serde_json::to_string_pretty(&dynamic).unwrap());
    let r = wait_for(
        "traefik to route demo.test",
        Duration::from_secs(10),
        || match traefik.get("demo.test", "/", &[]) {
            Ok(r) if r.status == 200 => Ok(r),
            other => Err(other.map(|r| r.status)),
        },
    );
    eprintln!("routed {:?} after the rename", start.elapsed());
    assert_eq!(r.body, "blue v9\n");
    assert_eq!(r.header("X-Slot"), Some("blue"));
    assert!(traefik.routers().contains(&"demo@file".to_string()));
    traefik.wait_router("demo-preview", Duration::from_secs(1));

    let p = traefik.get_preview("demo.test", "/", &[]).unwrap();
    assert_eq!((p.status, p.body.as_str()), (200, "blue v9\n"));
    assert_eq!(traefik.get("other.test", "/", &[]).unwrap().status, 404);

    // A short keep-alive load through traefik: every request answered by the backend.
    let load = Load::start(traefik.web_addr(), "demo.test", "/", &[], 4);
    wait_until("load to flow", Duration::from_secs(5), || {
        (load.sent() > 200).then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    let stats = load.stop();
    assert_eq!(stats.failures(), 0, "{stats:?}");
    assert_eq!(
        stats.bodies.get("blue v9\n").copied(),
        Some(stats.requests),
        "{stats:?}"
    );
    eprintln!("load: {} requests in {:?}", stats.requests, stats.elapsed);
}
