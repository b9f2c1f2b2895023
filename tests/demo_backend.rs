//! The demo backend (src/bin/pointsman-demo.rs), its image `pointsman-demo:dev` and the test
//! support code (tests/support) against a real Docker daemon and a real Traefik.
//!
//! Needs: `scripts/build-images.sh` (images) and `scripts/install-traefik.sh` (traefik). The
//! tests fail, not skip, when those are missing.

mod support;

use pointsman::core::names;
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

// ---- misbehaving on purpose: modes and counters ----------------------------------------------

fn stat(demo: &DemoProcess, key: &str) -> u64 {
    demo.stats()[key]
        .as_u64()
        .unwrap_or_else(|| panic!("/stats has no {key}"))
}

/// A chunked POST (the framing a proxy may use for a body of unknown length).
fn post_chunked(addr: &str, chunks: &[&str]) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(HTTP_TIMEOUT)).unwrap();
    let mut req =
        "POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_string();
    for c in chunks {
        req.push_str(&format!("{:x}\r\n{c}\r\n", c.len()));
    }
    req.push_str("0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// The binary itself, no Docker: ERROR_PERCENT spreads its 500s exactly, /stats counts app
/// requests and bodies (not /healthz), and `mode` changes errors and latency while it runs.
#[test]
fn demo_modes_inject_errors_and_latency_and_stats_count_requests() {
    let demo = DemoProcess::start("green", &[("ERROR_PERCENT", "10")]);
    let mut conn = HttpConn::new(&demo.addr);
    let mut failed = Vec::new();
    for n in 1..=50 {
        let r = conn.get("x", "/", &[]).unwrap();
        if r.status == 500 {
            assert_eq!(r.header("x-slot"), Some("green"));
            assert_eq!(r.header("x-demo-error"), Some("injected"));
            assert_eq!(r.body, "green v1\n");
            failed.push(n);
        } else {
            assert_eq!((r.status, r.header("x-demo-error")), (200, None));
        }
        // Health checks are neither failed nor counted.
        assert_eq!(conn.get("x", "/healthz", &[]).unwrap().status, 200);
    }
    assert_eq!(failed, [10, 20, 30, 40, 50], "every 10th app request fails");
    assert_eq!(conn.connects, 1, "a 500 keeps the connection");
    let stats = demo.stats();
    assert_eq!(
        stats,
        serde_json::json!({"requests": 50, "errors": 5, "bodies": 0, "body_bytes": 0, "error_percent": 10, "latency_ms": 0})
    );

    // Bodies, sized by Content-Length or chunked, are counted with their payload size.
    let r = http_send(&demo.addr, "POST", "x", "/upload", &[b'a'; 1000]).unwrap();
    assert!(r.status == 200 || r.status == 500, "{r:?}");
    assert!([200, 500].contains(&post_chunked(&demo.addr, &["hello", " world"])));
    assert_eq!((stat(&demo, "bodies"), stat(&demo, "body_bytes")), (2, 1011));
    assert_eq!(stat(&demo, "requests"), 52);

    // At runtime: slow and error-free, then back to the environment's mode.
    let out = demo.command(&["mode", "latency=150", "error=0"]);
    assert!(out.status.success(), "{out:?}");
    let start = Instant::now();
    for _ in 0..3 {
        assert_eq!(conn.get("x", "/", &[]).unwrap().status, 200);
    }
    assert!(start.elapsed() >= Duration::from_millis(450), "{:?}", start.elapsed());
    let start = Instant::now();
    assert_eq!(conn.get("x", "/healthz", &[]).unwrap().status, 200);
    assert!(start.elapsed() < Duration::from_millis(100), "healthz is never slowed");
    assert_eq!((stat(&demo, "latency_ms"), stat(&demo, "error_percent")), (150, 0));
    let out = demo.command(&["mode"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "error=0 latency=150\n");
    // Keys not given are kept.
    assert!(demo.command(&["mode", "error=2.5"]).status.success());
    assert_eq!(
        String::from_utf8_lossy(&demo.command(&["mode"]).stdout),
        "error=2.5 latency=150\n"
    );

    // `/status/CODE` answers that code whatever the mode, and is counted as an app request.
    let before = stat(&demo, "requests");
    let r = conn.get("x", "/status/503", &[]).unwrap();
    assert_eq!(
        (r.status, r.header("x-slot"), r.body.as_str()),
        (503, Some("green"), "green v1\n")
    );
    assert_eq!(r.header("x-demo-error"), None, "not an injected error");
    assert_eq!(conn.get("x", "/status/200", &[]).unwrap().status, 200);
    assert_eq!(stat(&demo, "requests"), before + 2);

    let bad = demo.command(&["mode", "error=250"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("error=\"250\" is not a percentage from 0 to 100"),
        "{bad:?}"
    );
    assert!(demo.command(&["mode", "reset"]).status.success());
    assert!(demo.command(&["mode", "reset"]).status.success(), "reset twice is fine");
    assert_eq!((stat(&demo, "latency_ms"), stat(&demo, "error_percent")), (0, 10));
}

/// In the image: `docker exec C /pointsman-demo mode error=50` turns a healthy container bad
/// without a restart, and its healthcheck stays green.
#[test]
fn demo_container_changes_mode_at_runtime_and_stays_healthy() {
    Docker::require_image(DEMO_IMAGE);
    let cleanup = Cleanup::for_test("demo-mode");
    let name = cleanup.id().to_string();
    let c = Docker::run_demo(&cleanup, &name, &[], &[("SLOT", "green")]);
    let addr = format!("{}:80", Docker::ip(&c));
    wait_for("container to become healthy", Duration::from_secs(10), || {
        docker_health(&c)
    });
    let started_at = Docker::inspect(&c)["State"]["StartedAt"].clone();

    Docker::run(&["exec", &c, "/pointsman-demo", "mode", "error=50"]);
    let statuses: Vec<u16> = (0..10)
        .map(|_| http_get(&addr, "x", "/", &[]).unwrap().status)
        .collect();
    assert_eq!(statuses, [200, 500, 200, 500, 200, 500, 200, 500, 200, 500]);
    let stats: serde_json::Value = serde_json::from_str(&http_get(&addr, "x", "/stats", &[]).unwrap().body).unwrap();
    assert_eq!(
        (stats["requests"].as_u64(), stats["errors"].as_u64()),
        (Some(10), Some(5))
    );
    assert_eq!(Docker::run(&["exec", &c, "/pointsman-demo", "mode"]), "error=50");

    std::thread::sleep(Duration::from_millis(2500)); // two healthcheck intervals
    assert_eq!(docker_health(&c), Ok(()));
    assert_eq!(Docker::inspect(&c)["State"]["StartedAt"], started_at, "not restarted");
}

/// What the SPEC's mirroring promises, checked on real Traefik with the demo's counters:
/// clients get the stable slot's answers, the candidate gets copies of the chosen share, and a
/// request whose body is above `maxBodySize` is served normally but not mirrored.
#[test]
fn traefik_mirrors_a_share_and_skips_bodies_above_the_limit() {
    let blue = DemoProcess::start("blue", &[]);
    let green = DemoProcess::start("green", &[("ERROR_PERCENT", "100")]);
    let dir = temp_dir("mirror-dyn");
    // Named as pointsman renders a mirror: `web` mirrors from `web.primary` to `web.slot.green`.
    let (primary, mirror) = (names::primary("web"), names::slot("web", "green"));
    let dynamic = serde_json::json!({
        "http": {
            "routers": { "web": { "rule": "Host(`web.test`)", "entryPoints": ["web"], "service": "web" } },
            "services": {
                "web": { "mirroring": {
                    "service": primary,
                    "maxBodySize": 1024,
                    "mirrors": [ { "name": mirror, "percent": 20 } ],
                } },
                primary.as_str(): { "loadBalancer": { "servers": [ { "url": blue.url() } ] } },
                mirror.as_str(): { "loadBalancer": { "servers": [ { "url": green.url() } ] } },
            },
        }
    });
    write_atomic(&dir.join("web.yml"), &dynamic.to_string());
    let traefik = Traefik::start(&dir);
    traefik.wait_router("web", Duration::from_secs(10));

    // GETs: every answer from blue (green, which fails them all, is never heard).
    let mut conn = HttpConn::new(traefik.web_addr());
    for _ in 0..200 {
        let r = conn.get("web.test", "/", &[]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "blue v1\n"));
    }
    let copies = wait_until("mirrored copies to arrive", Duration::from_secs(5), || {
        let n = stat(&green, "requests");
        (n >= 40).then_some(n)
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!((copies, stat(&green, "requests")), (40, 40), "20 % of 200, exactly");

    // Bodies above the limit: answered by blue, not mirrored at all.
    for _ in 0..50 {
        let r = http_send(traefik.web_addr(), "POST", "web.test", "/upload", &[b'x'; 1025]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "blue v1\n"));
    }
    // Bodies within the limit: mirrored, body and all.
    for _ in 0..50 {
        let r = http_send(traefik.web_addr(), "POST", "web.test", "/upload", &[b'y'; 1024]).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "blue v1\n"));
    }
    wait_until("mirrored bodies to arrive", Duration::from_secs(5), || {
        (stat(&green, "bodies") >= 10).then_some(())
    });
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        (
            stat(&green, "requests"),
            stat(&green, "bodies"),
            stat(&green, "body_bytes")
        ),
        (50, 10, 10 * 1024),
        "only the 1024-byte bodies were mirrored, 20 % of them"
    );
    assert_eq!(stat(&blue, "bodies"), 100);
}
