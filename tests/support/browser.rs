//! [`Browser`]: a real headless Chromium (Debian's `chromium`) driven over the DevTools
//! protocol, to test what a page shows a person: the DOM after its scripts ran, whether it
//! updates without a reload, whether any injected script ran, and screenshots.
//!
//! The protocol runs over a pipe (`--remote-debugging-pipe`: Chromium reads commands on fd 3
//! and writes answers on fd 4, each a JSON message ending in NUL), so no WebSocket client and
//! no port are needed; two FIFOs in a temp dir carry them (`sh` opens them as fds 3 and 4).
//!
//! Fails, never skips, when Chromium is missing (`.ci/run` installs it; `apt-get install
//! chromium`).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::temp_dir;

/// How long one protocol command may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// `$CHROMIUM`, else `chromium` on PATH; panics with the fix when there is none.
pub fn chromium_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("this test needs a real browser: Debian's chromium (apt-get install chromium; .ci/run installs it), or set CHROMIUM")
        })
}

pub struct Browser {
    child: Child,
    to_browser: File,
    from_browser: mpsc::Receiver<Value>,
    next_id: u64,
    /// The session of the page opened last.
    session: Option<String>,
    pub dir: PathBuf,
}

impl Browser {
    /// A headless Chromium with a fresh profile, 1280×900.
    pub fn start() -> Browser {
        Browser::start_with(&[])
    }

    /// [`Browser::start`] with more command-line switches (`--host-resolver-rules=…`).
    pub fn start_with(switches: &[&str]) -> Browser {
        let bin = chromium_bin();
        let dir = temp_dir("chromium");
        let (to, from) = (dir.join("to-browser"), dir.join("from-browser"));
        for fifo in [&to, &from] {
            let ok = Command::new("mkfifo").arg(fifo).status().is_ok_and(|s| s.success());
            assert!(ok, "mkfifo {}", fifo.display());
        }
        let log = File::create(dir.join("chromium.log")).unwrap();
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"to="$1"; from="$2"; shift 2; exec "$@" 3<"$to" 4>"$from""#)
            .arg("sh")
            .arg(&to)
            .arg(&from)
            .arg(&bin)
            .args([
                "--headless",
                "--remote-debugging-pipe",
                // Root in a container: Chromium's sandbox needs user namespaces it may not get.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--window-size=1280,900",
            ])
            .args(switches)
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", bin.display()));
        // Opening a FIFO waits for its other end: the shell opens `to` first, then `from`.
        let to_browser = OpenOptions::new().write(true).open(&to).unwrap();
        let reader = File::open(&from).unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(reader);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                message.pop();
                if let Ok(v) = serde_json::from_slice::<Value>(&message)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        Browser {
            child,
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: None,
            dir,
        }
    }

    /// Sends one command (to the page's session when `page`) and returns its result.
    fn call(&mut self, method: &str, params: Value, page: bool) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if page {
            message["sessionId"] = json!(self.session.clone().expect("a page is open"));
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.to_browser.write_all(&bytes).unwrap();
        let deadline = Instant::now() + CALL_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let answer = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|e| panic!("Chromium did not answer {method} ({e}); log:\n{}", self.log()));
            if answer["id"] == json!(id) {
                if let Some(error) = answer.get("error") {
                    panic!("{method} failed: {error}");
                }
                return answer["result"].clone();
            }
        }
    }

    /// Opens `url` in a new page and waits until it has loaded.
    pub fn open(&mut self, url: &str) {
        let target = self.call("Target.createTarget", json!({ "url": url }), false);
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
            false,
        );
        self.session = Some(attached["sessionId"].as_str().expect("sessionId").to_string());
        // The new target starts on about:blank, which is "complete" at once: wait for the URL.
        super::wait_for("the page to load", Duration::from_secs(20), || {
            let state = self.eval("[location.href, document.readyState]");
            match (state[0].as_str(), state[1].as_str()) {
                (Some(href), Some("complete")) if href.starts_with(url) => Ok(()),
                _ => Err(state),
            }
        });
    }

    /// Evaluates `expression` in the page; its value (JSON-able).
    pub fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
            true,
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// The page's visible text (`document.body.innerText`).
    pub fn text(&mut self) -> String {
        self.eval("document.body.innerText")
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// A PNG of the whole page.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({ "format": "png", "captureBeyondViewport": true }),
            true,
        );
        let png = base64_decode(r["data"].as_str().expect("data"));
        fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let data: Vec<u8> = chunk.iter().copied().filter(|&b| b != b'=').collect();
        let n = data
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &c)| acc | (value(c) << (18 - 6 * i)));
        for i in 0..data.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}
