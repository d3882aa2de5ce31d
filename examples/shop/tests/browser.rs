//! The web page in a real headless Chromium (Debian's `chromium`): a fresh
//! shop (four platforms, as `shop --dir DIR --http 127.0.0.1:0` starts them),
//! the page loaded, an item added to the cart and checked out through the
//! page's own buttons, the order row seen as "paid and shipped" and the
//! balance gone down by the order's total.
//!
//! Chromium is driven over the Chrome DevTools Protocol on its WebSocket
//! (tokio-tungstenite): one connection to the browser endpoint, a page made
//! with `Target.createTarget` and attached in flat mode, then
//! `Page.navigate` and `Runtime.evaluate`. Every wait has a deadline, and
//! guards stop Chromium and the shop on every way out of the test.
//!
//! Ignored by default (it needs `/usr/bin/chromium`); `.ci/run` installs
//! Chromium and runs the ignored tests. Run by hand with
//! `cargo test -p shop --test browser -- --ignored`. Without Chromium it
//! fails, ignored or not: it never passes without having driven the page.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Longest wait for the shop to print its URL (four platforms started in turn).
const SHOP_START: Duration = Duration::from_secs(150);
/// Longest wait for Chromium to print its DevTools endpoint.
const BROWSER_START: Duration = Duration::from_secs(30);
/// Longest wait for one DevTools command's answer.
const COMMAND: Duration = Duration::from_secs(20);
/// Longest wait for the page to show what a step expects.
const PAGE: Duration = Duration::from_secs(30);
/// Longest wait for a stopped process to exit before it is killed.
const STOP: Duration = Duration::from_secs(10);

#[test]
#[ignore = "needs Debian's chromium; .ci/run installs it and runs ignored tests"]
fn the_web_page_checks_out_a_cart_in_headless_chromium() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: this test drives Debian's chromium \
         (apt-get install --no-install-recommends chromium; .ci/run installs it)"
    );
    let started = Instant::now();
    let dir = TempDir::new();
    let shop = Shop::start(&dir.0.join("shop"), &dir.0.join("shop.stderr"));
    let url = match shop.url.clone() {
        Ok(url) => url,
        Err(error) => panic!("{error}\n{}", shop.diagnostics()),
    };
    let browser = Browser::start(&dir.0.join("chromium"));
    let endpoint = match browser.endpoint.clone() {
        Ok(endpoint) => endpoint,
        Err(error) => panic!("{error}\n{}", browser.diagnostics()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(drive(&endpoint, &url));
    drop(runtime);
    match outcome {
        Ok(summary) => eprintln!(
            "browser test passed in {:.1}s: {summary}",
            started.elapsed().as_secs_f64()
        ),
        Err(error) => panic!("{error}\n{}\n{}", browser.diagnostics(), shop.diagnostics()),
    }
}

/// The steps a person would take on the page, through its real buttons.
async fn drive(endpoint: &str, url: &str) -> Result<String, String> {
    let mut cdp = Cdp::connect(endpoint).await?;
    cdp.open_page().await?;
    let navigated = cdp.call("Page.navigate", json!({ "url": url })).await?;
    if let Some(error) = navigated["errorText"].as_str() {
        return Err(format!("Chromium could not load {url}: {error}"));
    }

    // Loaded: the first refresh is done and the catalogue has Add buttons.
    cdp.wait_for(
        "the page to finish its first load",
        r##"document.body && document.body.dataset.ready === "true"
           && document.querySelectorAll("#catalogue .add").length > 0"##,
    )
    .await?;
    let customer = cdp
        .eval(r##"document.getElementById("customer").value"##)
        .await?;
    if customer != json!("alice") {
        return Err(format!("the page shops as {customer}, expected alice"));
    }
    let message = cdp.eval(MESSAGE).await?;
    if message["error"] == json!(true) {
        return Err(format!("the page loaded with an error: {message}"));
    }
    let before = cdp
        .wait_for(
            "the balance to show an amount",
            r##"(() => { const t = document.getElementById("balance").textContent;
                        return /^\d+\.\d\d$/.test(t) ? t : null; })()"##,
        )
        .await?;
    let before = cents(&before)?;
    let orders_before = cdp.eval(ORDER_IDS).await?;
    let orders_before: Vec<String> = serde_json::from_value(orders_before)
        .map_err(|e| format!("the order ids are not a list of strings: {e}"))?;

    // Add: the first item in stock, by its button.
    let item = cdp
        .eval(
            r##"(() => {
                const add = document.querySelector("#catalogue .add:not(:disabled)");
                if (!add) return null;
                const row = add.closest("tr");
                const item = { id: add.dataset.item, name: row.cells[0].textContent,
                               price: row.cells[1].textContent };
                add.click();
                return item;
            })()"##,
        )
        .await?;
    if item.is_null() {
        return Err("no item in the catalogue has an enabled Add button".to_owned());
    }
    let id = item["id"].as_str().unwrap_or_default().to_owned();
    let name = item["name"].as_str().unwrap_or_default().to_owned();
    let price = cents(&item["price"])?;
    cdp.wait_for(
        "the item to appear in the cart and Check out to be enabled",
        &format!(
            r##"document.querySelectorAll("#cart .line").length === 1
               && document.querySelector('#cart .line[data-item="{id}"]') !== null
               && !document.getElementById("checkout").disabled"##
        ),
    )
    .await?;
    let total = cents(
        &cdp.eval(r##"document.getElementById("cart-total").textContent"##)
            .await?,
    )?;
    if total != price {
        return Err(format!(
            "the cart's total is {total} cents, the item's price {price}"
        ));
    }

    // Check out, by the button.
    cdp.eval(r##"document.getElementById("checkout").click()"##)
        .await?;
    let order = cdp
        .wait_for(
            "a new order row on the page",
            &format!(
                r##"(() => {{
                    const before = {};
                    const row = [...document.querySelectorAll("#orders .order")]
                        .find((r) => !before.includes(r.dataset.id));
                    return row ? row.dataset.id : null;
                }})()"##,
                json!(orders_before)
            ),
        )
        .await?;
    let order = order.as_str().unwrap_or_default().to_owned();
    let row = cdp
        .wait_for(
            &format!("order {order}'s state to read \"paid and shipped\""),
            &format!(
                r##"(() => {{
                    const row = document.querySelector('#orders .order[data-id="{order}"]');
                    if (!row || row.querySelector(".state").textContent !== "paid and shipped")
                        return null;
                    return {{ items: row.cells[1].textContent, total: row.cells[2].textContent,
                              state: row.querySelector(".state").textContent,
                              shipment: row.querySelector(".shipment").textContent }};
                }})()"##
            ),
        )
        .await?;
    if cents(&row["total"])? != total {
        return Err(format!(
            "order {order}'s row shows total {} for a cart of {total} cents",
            row["total"]
        ));
    }
    if !row["items"].as_str().unwrap_or_default().contains(&name) {
        return Err(format!(
            "order {order}'s row lists {} without {name:?}",
            row["items"]
        ));
    }
    let message = cdp.eval(MESSAGE).await?;
    let text = message["text"].as_str().unwrap_or_default();
    if message["error"] == json!(true) || !text.starts_with(&format!("Order {order}:")) {
        return Err(format!(
            "after checkout the message reads {message}, expected \"Order {order}: ...\""
        ));
    }
    cdp.wait_for(
        "the cart to be empty and Check out disabled",
        r##"document.querySelectorAll("#cart .line").length === 0
           && document.getElementById("checkout").disabled"##,
    )
    .await?;

    // The balance went down by the order's total.
    let expected = before - total;
    let after = cdp
        .wait_for(
            &format!("the balance to read {}", money(expected)),
            &format!(
                r##"(() => {{ const t = document.getElementById("balance").textContent;
                            return t === "{}" ? t : null; }})()"##,
                money(expected)
            ),
        )
        .await?;
    cdp.close().await;
    Ok(format!(
        "added {name} (item {id}, {}), order {order} {}, shipment {:?}, balance {} -> {}",
        money(price),
        row["state"].as_str().unwrap_or_default(),
        row["shipment"].as_str().unwrap_or_default(),
        money(before),
        after.as_str().unwrap_or_default()
    ))
}

/// The message line's text and whether it shows an error.
const MESSAGE: &str = r##"({ text: document.getElementById("message").textContent,
                            error: document.getElementById("message").classList.contains("error") })"##;

/// The ids of the order rows on the page.
const ORDER_IDS: &str =
    r##"[...document.querySelectorAll("#orders .order")].map((row) => row.dataset.id)"##;

/// What the page shows, for a failure's message.
const SNAPSHOT: &str = r##"(() => {
    const text = (id) => { const e = document.getElementById(id); return e ? e.innerText : null; };
    return { url: location.href, ready: document.body ? document.body.dataset.ready : null,
             customer: text("customer") === null ? null : document.getElementById("customer").value,
             balance: text("balance"), message: text("message"), cart: text("cart"),
             total: text("cart-total"), orders: text("orders") };
})()"##;

/// Amount text such as "250.00" (a JSON string) in cents.
fn cents(text: &Value) -> Result<i64, String> {
    let parsed = text.as_str().and_then(|t| {
        let (whole, fraction) = t.trim().split_once('.')?;
        if fraction.len() != 2 {
            return None;
        }
        Some(whole.parse::<i64>().ok()? * 100 + fraction.parse::<i64>().ok()?)
    });
    parsed.ok_or_else(|| format!("{text} is not an amount like 12.34"))
}

/// Cents as the page writes them.
fn money(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A DevTools connection to the browser, with one page attached in flat mode.
struct Cdp {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    session: Option<String>,
    /// Exceptions and console errors the page reported, for failure messages.
    page_errors: Vec<String>,
}

impl Cdp {
    async fn connect(endpoint: &str) -> Result<Self, String> {
        let (socket, _) = tokio::time::timeout(COMMAND, tokio_tungstenite::connect_async(endpoint))
            .await
            .map_err(|_| format!("no WebSocket connection to {endpoint} within {COMMAND:?}"))?
            .map_err(|e| format!("cannot connect to {endpoint}: {e}"))?;
        Ok(Self {
            socket,
            next_id: 0,
            session: None,
            page_errors: Vec::new(),
        })
    }

    /// A new page target, attached; later commands go to it.
    async fn open_page(&mut self) -> Result<(), String> {
        let target = self
            .call("Target.createTarget", json!({ "url": "about:blank" }))
            .await?;
        let target = target["targetId"]
            .as_str()
            .ok_or_else(|| format!("Target.createTarget gave no targetId: {target}"))?
            .to_owned();
        let attached = self
            .call(
                "Target.attachToTarget",
                json!({ "targetId": target, "flatten": true }),
            )
            .await?;
        let session = attached["sessionId"]
            .as_str()
            .ok_or_else(|| format!("Target.attachToTarget gave no sessionId: {attached}"))?
            .to_owned();
        self.session = Some(session);
        self.call("Page.enable", json!({})).await?;
        self.call("Runtime.enable", json!({})).await?;
        Ok(())
    }

    /// One command, to the page once one is attached; its result.
    async fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = &self.session {
            command["sessionId"] = json!(session);
        }
        let answer = tokio::time::timeout(COMMAND, async {
            self.socket
                .send(Message::text(command.to_string()))
                .await
                .map_err(|e| format!("{method}: cannot send: {e}"))?;
            loop {
                let message = match self.socket.next().await {
                    Some(Ok(message)) => message,
                    Some(Err(e)) => {
                        return Err(format!("{method}: the DevTools socket failed: {e}"));
                    }
                    None => {
                        return Err(format!("{method}: the browser closed the DevTools socket"));
                    }
                };
                let Message::Text(text) = message else {
                    continue;
                };
                let value: Value = serde_json::from_str(text.as_str())
                    .map_err(|e| format!("{method}: not JSON from the browser ({e}): {text}"))?;
                if value["id"] == json!(id) {
                    return Ok(value);
                }
                self.note_event(&value);
            }
        })
        .await
        .map_err(|_| format!("{method}: no answer from the browser within {COMMAND:?}"))??;
        if let Some(error) = answer.get("error") {
            return Err(format!("{method} failed: {error}"));
        }
        Ok(answer["result"].clone())
    }

    /// Keeps what a failure message would want from the page's events.
    fn note_event(&mut self, event: &Value) {
        let params = &event["params"];
        match event["method"].as_str() {
            Some("Runtime.exceptionThrown") => {
                let details = &params["exceptionDetails"];
                let description = details["exception"]["description"]
                    .as_str()
                    .or_else(|| details["text"].as_str())
                    .unwrap_or_default();
                self.page_errors.push(format!("exception: {description}"));
            }
            Some("Runtime.consoleAPICalled") if params["type"] == json!("error") => {
                let args: Vec<String> = params["args"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|a| {
                        a["value"]
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| a["description"].to_string())
                    })
                    .collect();
                self.page_errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            _ => {}
        }
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    async fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await?;
        if let Some(details) = result.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or_default();
            return Err(format!(
                "the page threw {description:?} evaluating {expression}"
            ));
        }
        Ok(result["result"]["value"].clone())
    }

    /// Polls `expression` until it is neither null, undefined nor false, for
    /// at most `PAGE`; its value. Errors while polling (the page still
    /// loading, say) count as not yet.
    async fn wait_for(&mut self, what: &str, expression: &str) -> Result<Value, String> {
        let deadline = Instant::now() + PAGE;
        let mut last;
        loop {
            match self.eval(expression).await {
                Ok(value) if !(value.is_null() || value == json!(false)) => return Ok(value),
                Ok(value) => last = format!("last value {value}"),
                Err(error) => last = format!("last error {error}"),
            }
            if Instant::now() >= deadline {
                let page = self
                    .eval(SNAPSHOT)
                    .await
                    .map_or_else(|e| e, |v| format!("{v:#}"));
                return Err(format!(
                    "timed out after {PAGE:?} waiting for {what} ({last})\npage: {page}\n\
                     page errors: {:?}",
                    self.page_errors
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(None)).await;
    }
}

/// A fresh directory for the shop and Chromium's profile, removed on drop
/// (declared first, so dropped after both have stopped).
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "jadeite-shop-browser-{}-{nanos}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Lines from a child's pipe, read on a thread: the first lines go to a
/// channel, all are kept for failure messages, and the pipe is drained to
/// its end so the child never blocks on it.
fn read_lines(
    pipe: impl Read + Send + 'static,
) -> (
    mpsc::Receiver<String>,
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) {
    let (tx, rx) = mpsc::channel();
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = kept.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut kept) = keep.lock() {
                kept.push(line.clone());
            }
            let _ = tx.send(line);
        }
    });
    (rx, kept)
}

/// Waits at most `patience` for a line that `pick` accepts.
fn wait_for_line(
    lines: &mpsc::Receiver<String>,
    patience: Duration,
    pick: impl Fn(&str) -> Option<String>,
) -> Result<String, &'static str> {
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(found) = pick(&line) {
                    return Ok(found);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => return Err("timed out"),
            Err(mpsc::RecvTimeoutError::Disconnected) => return Err("it exited"),
        }
    }
}

/// Sends `signal` to a process id (or to a process group, as `-PGID`).
fn signal(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits at most `patience` for a child to exit; whether it did.
fn wait_exit(child: &mut Child, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() >= deadline => return false,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The last `n` of some lines, for a failure message, without colour codes.
fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| plain(line))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `line` without ANSI colour sequences (ESC [ ... m).
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The shop launcher, stopped on drop: SIGINT (it stops its platforms), then
/// SIGKILL if it lingers (its platforms exit when its pipes close).
struct Shop {
    child: Child,
    dir: PathBuf,
    stderr: PathBuf,
    stdout: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    url: Result<String, String>,
}

impl Shop {
    fn start(dir: &Path, stderr: &Path) -> Self {
        let log = std::fs::File::create(stderr).expect("a file for the shop's stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_shop"))
            .arg("--dir")
            .arg(dir)
            .args(["--http", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("the shop starts");
        let stdout = child.stdout.take().expect("the shop's stdout");
        let (lines, kept) = read_lines(stdout);
        let url = wait_for_line(&lines, SHOP_START, |line| {
            let rest = line.strip_prefix("the shop is open at ")?;
            Some(rest.split_whitespace().next()?.to_owned())
        })
        .map_err(|why| {
            format!("the shop printed no \"the shop is open at\" line within {SHOP_START:?}: {why}")
        });
        Self {
            child,
            dir: dir.to_owned(),
            stderr: stderr.to_owned(),
            stdout: kept,
            url,
        }
    }

    fn diagnostics(&self) -> String {
        let mut out = String::new();
        if let Ok(stdout) = self.stdout.lock() {
            out += &format!("--- shop stdout (last lines)\n{}\n", tail(&stdout, 20));
        }
        let stderr = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let stderr: Vec<String> = stderr.lines().map(str::to_owned).collect();
        out += &format!("--- shop stderr (last lines)\n{}\n", tail(&stderr, 20));
        for platform in ["api", "payments", "logistics", "suggestions"] {
            let log =
                std::fs::read_to_string(self.dir.join("logs").join(format!("{platform}.log")))
                    .unwrap_or_default();
            let log: Vec<String> = log.lines().map(str::to_owned).collect();
            out += &format!("--- {platform}.log (last lines)\n{}\n", tail(&log, 15));
        }
        out
    }
}

impl Drop for Shop {
    fn drop(&mut self) {
        signal("-INT", &self.child.id().to_string());
        if !wait_exit(&mut self.child, STOP) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Chromium in its own process group, all of which is stopped on drop:
/// SIGTERM to the browser, then SIGKILL for whatever is left.
struct Browser {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    endpoint: Result<String, String>,
}

impl Browser {
    /// Chromium with its profile, temporary files and home under `dir`.
    fn start(dir: &Path) -> Self {
        use std::os::unix::process::CommandExt;
        let profile = dir.join("profile");
        let tmp = dir.join("tmp");
        let home = dir.join("home");
        for dir in [&profile, &tmp, &home] {
            std::fs::create_dir_all(dir).expect("a directory for chromium");
        }
        let mut child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--remote-debugging-port=0", "about:blank"])
            // Its singleton socket directory and crash reports go into the
            // test's directory too, not /tmp and ~/.config.
            .env("TMPDIR", &tmp)
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMIUM}: {e}"));
        let stderr = child.stderr.take().expect("chromium's stderr");
        let (lines, kept) = read_lines(stderr);
        let endpoint = wait_for_line(&lines, BROWSER_START, |line| {
            let at = line.find("DevTools listening on ")?;
            Some(
                line[at + "DevTools listening on ".len()..]
                    .trim()
                    .to_owned(),
            )
        })
        .map_err(|why| {
            format!(
                "chromium printed no \"DevTools listening on\" line within {BROWSER_START:?}: {why}"
            )
        });
        Self {
            child,
            stderr: kept,
            endpoint,
        }
    }

    fn diagnostics(&self) -> String {
        match self.stderr.lock() {
            Ok(stderr) => {
                // Without a session bus, Chromium logs D-Bus errors by the dozen.
                let stderr: Vec<String> = stderr
                    .iter()
                    .filter(|line| !line.contains("dbus/"))
                    .cloned()
                    .collect();
                format!(
                    "--- chromium stderr (last lines, D-Bus noise left out)\n{}",
                    tail(&stderr, 20)
                )
            }
            Err(_) => String::new(),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The browser first, so that it shuts down in order; then the
        // group (its id is the browser's pid, by process_group(0)).
        let group = format!("-{}", self.child.id());
        signal("-TERM", &self.child.id().to_string());
        if !wait_exit(&mut self.child, STOP) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Renderers and helpers that outlived the browser.
        signal("-KILL", &group);
    }
}
