//! Nothing read from outside panics (issue 16, point 5): the real `pointsman` binary against
//! hand-written bad state files and against a fake Redis answering garbage. Each case must end
//! in exit 2 with a message naming the source (the file, or the key and the server) and what
//! is wrong; never 101 (a panic) or 134 (an abort: stack overflow, allocation failure).
//!
//! Neither Docker nor Redis is needed: the state is read, and refused, before Docker is asked
//! anything, and the fake Redis is a TCP listener in this test.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::thread;
use std::time::Duration;

fn pointsman(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pointsman"))
        .args(args)
        .env_remove("POINTSMAN_DIR")
        .env_remove("POINTSMAN_STORE")
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("the pointsman binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh `--dir` holding `state` as its state file.
fn dir_with_state(name: &str, state: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pointsman-hostile-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join(".pointsman")).unwrap();
    fs::write(dir.join(".pointsman/state.json"), state).unwrap();
    dir
}

/// A state as pointsman writes it during `rollout web --steps 10,50,100`, with `edit` applied.
fn state(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v = serde_json::json!({
        "format": 2,
        "apps": {"web": {
            "stable": "blue",
            "canary": {"slot": "green", "percent": 10},
            "rollout": {
                "slot": "green", "steps": [10, 50, 100], "pause_ms": 60000, "step": 0,
                "since": "2024-01-01T00:00:00Z"
            }
        }},
        "history": []
    });
    edit(&mut v);
    v.to_string()
}

#[test]
fn bad_state_files_are_exit_2_naming_the_file_and_the_field() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "empty-steps",
            state(|v| v["apps"]["web"]["rollout"]["steps"] = serde_json::json!([])),
            "apps.web.rollout.steps: is empty",
        ),
        (
            "decreasing-steps",
            state(|v| v["apps"]["web"]["rollout"]["steps"] = serde_json::json!([50, 10])),
            "apps.web.rollout.steps.1: is 10 after 50",
        ),
        (
            "step-past-the-plan",
            state(|v| v["apps"]["web"]["rollout"]["step"] = serde_json::json!(u64::MAX)),
            "apps.web.rollout.step: is 18446744073709551615",
        ),
        (
            "huge-pause",
            state(|v| v["apps"]["web"]["rollout"]["pause_ms"] = serde_json::json!(u64::MAX)),
            "apps.web.rollout.pause_ms",
        ),
        (
            "canary-over-100",
            state(|v| v["apps"]["web"]["canary"]["percent"] = serde_json::json!(250)),
            "apps.web.canary.percent: is 250",
        ),
        (
            "mirror-over-100",
            state(|v| v["apps"]["web"]["mirror"] = serde_json::json!({"slot": "green", "percent": 101})),
            "apps.web.mirror.percent: is 101",
        ),
        (
            "bad-app-name",
            state(|v| v["apps"]["../etc"] = serde_json::json!({})),
            "apps.\"../etc\": is not an app name",
        ),
        (
            "bad-slot-name",
            state(|v| v["apps"]["web"]["stable"] = serde_json::json!("blue`{{x}}")),
            "apps.web.stable",
        ),
    ];
    for (name, text, field) in cases {
        let dir = dir_with_state(name, &text);
        let file = dir.join(".pointsman/state.json");
        let out = pointsman(&["--dir", dir.to_str().unwrap(), "status"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("state file {}: ", file.display())),
            "{name}: {err}"
        );
        assert!(err.contains(field), "{name}: expected {field:?} in: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
        // The file is left as it was: roles are never reset silently.
        assert_eq!(fs::read_to_string(&file).unwrap(), text, "{name}");
        let _ = fs::remove_dir_all(&dir);
    }
}

#[test]
fn the_way_out_of_an_empty_rollout_is_named() {
    let dir = dir_with_state(
        "way-out",
        &state(|v| v["apps"]["web"]["rollout"]["steps"] = serde_json::json!([])),
    );
    let out = pointsman(&["--dir", dir.to_str().unwrap(), "status"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("delete apps.web.rollout and apps.web.canary") && err.contains("pointsman abort web"),
        "{err}"
    );
    let _ = fs::remove_dir_all(&dir);
}

/// A fake Redis on 127.0.0.1: to each connection it answers `reply` to whatever is sent first,
/// then reads until the client hangs up.
fn fake_redis(reply: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let reply = reply.clone();
            thread::spawn(move || answer(&mut conn, &reply));
        }
    });
    port
}

fn answer(conn: &mut TcpStream, reply: &[u8]) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = [0u8; 4096];
    if !matches!(conn.read(&mut buf), Ok(n) if n > 0) {
        return;
    }
    // A client that stops reading (it refused the reply) ends the write; that is fine.
    let _ = conn.write_all(reply);
    let _ = conn.flush();
    while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
}

#[test]
fn garbage_from_redis_is_exit_2_naming_the_server() {
    let bulk = |text: &str| format!("${}\r\n{text}\r\n", text.len()).into_bytes();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty line", b"\r\n".to_vec(), "an empty line"),
        (
            "huge bulk length",
            b"$99999999999\r\n".to_vec(),
            "bulk length 99999999999",
        ),
        ("negative bulk length", b"$-7\r\n".to_vec(), "bulk length -7"),
        ("huge array", b"*99999999999\r\n".to_vec(), "array of 99999999999 items"),
        ("negative array length", b"*-2\r\n".to_vec(), "array length -2"),
        ("deep nesting", b"*1\r\n".repeat(100_000), "nested 32 deep"),
        ("endless line", vec![b'+'; 1 << 20], "longer than 64 KiB"),
        ("not a number", b":lots\r\n".to_vec(), "is not a number"),
        (
            "unknown type",
            b"HTTP/1.1 400 Bad Request\r\n".to_vec(),
            "unknown reply type 'H'",
        ),
        ("LF only", b"+OK\n".to_vec(), "LF without CR"),
        ("bulk without CRLF", b"$2\r\n{}XX".to_vec(), "not followed by CRLF"),
    ];
    for (name, reply, what) in cases {
        let port = fake_redis(reply);
        let server = format!("redis://127.0.0.1:{port}/0");
        let out = pointsman(&["--store", &format!("redis://127.0.0.1:{port}"), "status"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(
            err.contains(&format!("Redis at {server} sent a malformed reply")),
            "{name}: {err}"
        );
        assert!(err.contains(what), "{name}: expected {what:?} in: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
    // A state key that parses but is invalid names the key and the server.
    let port = fake_redis(bulk(&state(|v| {
        v["apps"]["web"]["rollout"]["steps"] = serde_json::json!([])
    })));
    let out = pointsman(&["--store", &format!("redis://127.0.0.1:{port}"), "status"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "key pointsman/state in redis://127.0.0.1:{port}/0: apps.web.rollout.steps: is empty"
        )),
        "{err}"
    );
}
