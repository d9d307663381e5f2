//! The dashboard in a real browser: `acre-node --dashboard` with a farmer, opened in headless Chromium
//! driven over the DevTools protocol. The page loads, connects to the node's RPC (the dashboard's origin
//! is allowed), the head advances live, the block-time chart has points, and a screenshot is saved as
//! a test artifact (`target/tmp/dashboard.png`).
//!
//! Chromium is installed by this test's setup (Debian's `chromium` package) where it is missing and the
//! test runs as root with `apt-get`; elsewhere the test says it is skipped and why.

mod common;

use acre_tests::http_get;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acre_execution::Address;
use acre_node::chain_spec::ChainSpec;
use base64::Engine;
use common::{KillOnDrop, free_port, spawn_farmer, spawn_node_with};
use serde_json::{Value, json};
use tungstenite::Message;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium's path, installing it if it is missing and this process may; `Err` says why not.
fn chromium() -> Result<PathBuf, String> {
    let path = Path::new(CHROMIUM);
    if path.exists() {
        return Ok(path.to_owned());
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.starts_with(b"0"));
    if !root {
        return Err("chromium is not installed and this test is not running as root".into());
    }
    eprintln!("installing Debian's chromium for the dashboard test (once)…");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status();
    match installed {
        Ok(status) if status.success() && path.exists() => Ok(path.to_owned()),
        Ok(status) => Err(format!("apt-get install chromium failed ({status})")),
        Err(error) => Err(format!("apt-get is not available: {error}")),
    }
}

/// A DevTools protocol session with one page.
struct Page {
    socket: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The page's session on the browser connection (none: a browser-level call).
    session: Option<String>,
}

impl Page {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut request = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            request["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(request.to_string()))
            .expect("DevTools request sent");
        loop {
            let message = self.socket.read().expect("DevTools answer");
            let Ok(text) = message.to_text() else { continue };
            let Ok(answer) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if answer["id"] == json!(id) {
                assert!(answer.get("error").is_none(), "{method} failed: {answer}");
                return answer["result"].clone();
            }
        }
    }

    /// The page's test hooks.
    fn hooks(&mut self) -> Value {
        let expression = "JSON.stringify({\
            best: document.getElementById('best-number')?.textContent ?? '',\
            connection: document.getElementById('connection')?.textContent ?? '',\
            heads: Number(document.body?.dataset.headsReceived ?? 0),\
            points: Number(document.getElementById('block-time-chart')?.dataset.points ?? 0)})";
        let result = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true }),
        );
        serde_json::from_str(result["result"]["value"].as_str().unwrap_or("{}")).expect("hooks JSON")
    }
}

#[test]
fn the_dashboard_shows_the_chain_live_in_headless_chromium() {
    let chromium = match chromium() {
        Ok(path) => path,
        Err(reason) => {
            eprintln!("skipped: the dashboard browser test needs Chromium: {reason}");
            return;
        }
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut spec = ChainSpec::dev();
    spec.name = "dashboard".into();
    let spec_path = dir.path().join("spec.json");
    std::fs::write(&spec_path, serde_json::to_string(&spec).expect("JSON")).expect("writes");
    let (rpc, farmer_rpc, dashboard) = (free_port(), free_port(), free_port());
    let dashboard_address = format!("127.0.0.1:{dashboard}");
    let _node = spawn_node_with(
        &spec_path,
        &dir.path().join("node"),
        rpc,
        farmer_rpc,
        None,
        "warn",
        &["--dashboard", &dashboard_address],
    );
    let _farmer = spawn_farmer(
        farmer_rpc,
        &Address([0x5a; 32]),
        &dir.path().join("farm"),
        "80K",
        "warn",
    );

    // The page and its config, over plain HTTP.
    let started = Instant::now();
    let config = loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", dashboard)) {
            drop(stream.flush());
            break http_get(dashboard, "/config.json");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dashboard on {dashboard}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        config.contains(&format!("\"rpc\":\"ws://127.0.0.1:{rpc}\"")),
        "{config}"
    );
    let page = http_get(dashboard, "/");
    assert!(
        page.starts_with("HTTP/1.1 200") && page.contains("content-security-policy"),
        "{page}"
    );

    let profile = dir.path().join("chromium-profile");
    let mut browser = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let stderr = browser.stderr.take().expect("stderr");
    let _browser = KillOnDrop(browser);
    let mut lines = BufReader::new(stderr).lines();
    let browser_url = loop {
        let line = lines
            .next()
            .expect("chromium prints its DevTools address")
            .expect("reads");
        if let Some(url) = line.strip_prefix("DevTools listening on ") {
            break url.trim().to_owned();
        }
    };
    // Keep draining Chromium's log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));

    // One browser connection; the page is a target attached with a flat session.
    let (socket, _) = tungstenite::connect(browser_url.as_str()).expect("DevTools connects");
    let mut page = Page {
        socket,
        next_id: 0,
        session: None,
    };
    let target = page.call("Target.createTarget", json!({ "url": "about:blank" }));
    let attached = page.call(
        "Target.attachToTarget",
        json!({ "targetId": target["targetId"], "flatten": true }),
    );
    page.session = Some(attached["sessionId"].as_str().expect("a session").to_owned());
    page.call("Page.enable", json!({}));
    page.call(
        "Page.navigate",
        json!({ "url": format!("http://{dashboard_address}/") }),
    );

    // Connected, then a first head, then the head advancing live, with the block-time chart drawn.
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut first_best = None;
    let hooks = loop {
        assert!(
            Instant::now() < deadline,
            "the dashboard did not go live: {}",
            page.hooks()
        );
        std::thread::sleep(Duration::from_millis(500));
        let hooks = page.hooks();
        if hooks["connection"] != "connected" {
            continue;
        }
        let Ok(best) = hooks["best"].as_str().unwrap_or_default().trim().parse::<u64>() else {
            continue;
        };
        let first = *first_best.get_or_insert(best);
        if best > first && hooks["heads"].as_u64() >= Some(1) && hooks["points"].as_u64() >= Some(1) {
            break hooks;
        }
    };
    eprintln!("dashboard live: {hooks}");

    let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("screenshot data"))
        .expect("base64");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let artifact = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&artifact, &png).expect("writes the screenshot");
    eprintln!("screenshot: {}", artifact.display());
}
