//! `hello serve` and `hello send` as two real processes talking over
//! 127.0.0.1. Every child is killed when its guard drops, and every read has
//! a deadline, so a broken binary fails these tests instead of hanging them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const HELLO: &str = env!("CARGO_BIN_EXE_hello");

/// Longest wait for one line from `serve` (start-up included) or for a process to end.
const PATIENCE: Duration = Duration::from_secs(60);
/// `send --timeout-secs`: below `PATIENCE`, so `send` gives up on its own first.
const SEND_TIMEOUT_SECS: &str = "40";

const KEY: &str = "8f3a6c1d2e4b5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";
const OTHER_KEY: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "correct horse battery staple";
const OTHER_PASSWORD: &str = "correct horse battery stapler";
/// Both roles, as `serve` and `send` print them: sorted, comma-separated.
const BOTH_ROLES: &str = "inventory,logistics";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A child process that is killed (and reaped) when dropped, whatever happened.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Guard {
    /// Waits for the process to end, at most `PATIENCE`.
    fn wait(&mut self, what: &str) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            match self.0.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => panic!("{what} did not exit within {PATIENCE:?}"),
                Err(error) => panic!("waiting for {what}: {error}"),
            }
        }
    }
}

fn hello(args: &[&str]) -> Command {
    let mut command = Command::new(HELLO);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Reads a whole stream in a thread: a full pipe never blocks the child.
fn collect(mut stream: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    })
}

/// A running `hello serve`: its stdout line by line, with deadlines.
struct Server {
    child: Guard,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    /// Every `listening` URL, in order.
    urls: Vec<String>,
}

impl Server {
    /// Starts `hello serve ARGS` and waits for `ready`.
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = hello(&[&["serve"][..], args].concat());
        command.envs(env.iter().copied());
        let mut child = Guard(command.spawn().expect("spawn hello serve"));
        let stdout = child.0.stdout.take().expect("piped stdout");
        let stderr = child.0.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Self {
            child,
            lines,
            stderr: Some(collect(stderr)),
            urls: Vec::new(),
        };
        loop {
            let line = server.next_line("`ready`");
            if line == "ready" {
                break;
            }
            match line.strip_prefix("listening ") {
                Some(url) => server.urls.push(url.to_owned()),
                None => server.fail(&format!("unexpected line before `ready`: {line:?}")),
            }
        }
        if server.urls.is_empty() {
            server.fail("`ready` without a `listening` line");
        }
        server
    }

    fn url(&self) -> &str {
        &self.urls[0]
    }

    fn next_line(&mut self, waiting_for: &str) -> String {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => line,
            Err(RecvTimeoutError::Timeout) => {
                self.fail(&format!("no {waiting_for} within {PATIENCE:?}"))
            }
            Err(RecvTimeoutError::Disconnected) => {
                self.fail(&format!("stdout closed while waiting for {waiting_for}"))
            }
        }
    }

    fn pid(&self) -> String {
        self.child.0.id().to_string()
    }

    /// Stops `serve` with SIGTERM; its exit status and the rest of its stdout.
    fn terminate(mut self) -> (ExitStatus, Vec<String>) {
        sigterm(&self.pid());
        let status = self.child.wait("hello serve after SIGTERM");
        // The process is gone, so the reader thread ends at EOF and the
        // channel disconnects: everything serve printed is collected.
        let mut rest = Vec::new();
        loop {
            match self.lines.recv_timeout(PATIENCE) {
                Ok(line) => rest.push(line),
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => panic!("serve's stdout not closed"),
            }
        }
        (status, rest)
    }

    /// Panics with `message` and what serve wrote to stderr (the guard kills it).
    fn fail(&mut self, message: &str) -> ! {
        let _ = self.child.0.kill();
        let stderr = self
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        panic!("hello serve: {message}\nstderr:\n{stderr}");
    }
}

fn sigterm(pid: &str) {
    let status = Command::new("kill")
        .args(["-TERM", pid])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid}: {status}");
}

/// What a finished `hello send` did.
#[derive(Debug)]
struct SendOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl SendOutput {
    /// The `peer` line's roles, if there is such a line.
    fn peer_roles(&self) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|line| line.strip_prefix("peer "))
            .map(|rest| {
                rest.split_once(" roles=")
                    .unwrap_or_else(|| panic!("malformed peer line: {rest:?}"))
                    .1
            })
    }
}

/// Runs `hello send --connect URL --count COUNT ARGS` to the end.
fn send(url: &str, count: u32, args: &[&str], env: &[(&str, &str)]) -> SendOutput {
    let count = count.to_string();
    let base = [
        "send",
        "--connect",
        url,
        "--count",
        &count,
        "--timeout-secs",
        SEND_TIMEOUT_SECS,
    ];
    let mut command = hello(&[&base[..], args].concat());
    command.envs(env.iter().copied());
    let mut child = Guard(command.spawn().expect("spawn hello send"));
    let stdout = collect(child.0.stdout.take().expect("piped stdout"));
    let stderr = collect(child.0.stderr.take().expect("piped stderr"));
    let status = child.wait("hello send");
    SendOutput {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// The `recv` lines of serve's output as `n -> (sender, roles)`; asserts that
/// every line is a well-formed `recv` line and that no `n` comes twice.
fn recv_lines(lines: &[String]) -> BTreeMap<u64, (String, String)> {
    let mut received = BTreeMap::new();
    for line in lines {
        let rest = line
            .strip_prefix("recv ")
            .unwrap_or_else(|| panic!("unexpected serve line {line:?}"));
        let (n, rest) = rest.split_once(" from ").expect("recv N from");
        let (from, roles) = rest.split_once(" roles=").expect("from ID roles=");
        let n: u64 = n
            .parse()
            .unwrap_or_else(|_| panic!("bad number in {line:?}"));
        let earlier = received.insert(n, (from.to_owned(), roles.to_owned()));
        assert!(earlier.is_none(), "message {n} received twice");
    }
    received
}

/// Asserts that serve got exactly 1..=count, each once, all from one
/// platform (the one send talked to) with `roles`.
fn assert_received(lines: &[String], count: u64, roles: &str) {
    let received = recv_lines(lines);
    assert_eq!(lines.len() as u64, count, "recv lines: {lines:#?}");
    assert_eq!(
        received.keys().copied().collect::<Vec<_>>(),
        (1..=count).collect::<Vec<_>>()
    );
    let senders: std::collections::BTreeSet<_> = received.values().map(|(from, _)| from).collect();
    assert_eq!(senders.len(), 1, "one sending platform: {senders:?}");
    for (n, (_, got)) in &received {
        assert_eq!(got, roles, "roles of message {n}");
    }
}

/// Role flags: `inventory` by shared key, `logistics` by password.
fn role_flags(key: &str, password: &str) -> Vec<String> {
    vec![
        "--key".to_owned(),
        format!("inventory={key}"),
        "--password".to_owned(),
        format!("logistics={password}"),
    ]
}

fn strs(strings: &[String]) -> Vec<&str> {
    strings.iter().map(String::as_str).collect()
}

/// Serve with both roles on `listen`, send `count` messages with the given
/// sender secrets; returns send's output and serve's lines after `ready`.
fn exchange(
    listen: &str,
    count: u32,
    sender_key: &str,
    sender_password: &str,
) -> (SendOutput, Vec<String>) {
    let server_roles = role_flags(KEY, PASSWORD);
    let server = Server::start(
        &[&["--listen", listen][..], &strs(&server_roles)].concat(),
        &[],
    );
    let client_roles = role_flags(sender_key, sender_password);
    let output = send(
        server.url(),
        count,
        &[&["--window", "8"][..], &strs(&client_roles)].concat(),
        &[],
    );
    let (status, lines) = server.terminate();
    assert!(
        status.success(),
        "serve exit status after SIGTERM: {status}"
    );
    (output, lines)
}

/// A directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "hello-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir(&path).expect("create temp dir");
        Self(path)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

fn assert_full_exchange(listen: &str) {
    let (output, lines) = exchange(listen, 50, KEY, PASSWORD);
    assert!(output.status.success(), "{output:#?}");
    assert!(
        output.stdout.lines().any(|line| line == "sent 50 acked 50"),
        "{output:#?}"
    );
    assert_eq!(output.peer_roles(), Some(BOTH_ROLES), "{output:#?}");
    assert_received(&lines, 50, BOTH_ROLES);
}

#[test]
fn tcp_exchange_verifies_both_roles() {
    assert_full_exchange("tcp://127.0.0.1:0");
}

#[test]
fn websocket_exchange_verifies_both_roles() {
    assert_full_exchange("ws://127.0.0.1:0/hello");
}

#[test]
fn a_role_with_a_different_password_does_not_verify() {
    let (output, lines) = exchange("tcp://127.0.0.1:0", 20, KEY, OTHER_PASSWORD);
    // The shared key still verifies: the session is made and all is acked.
    assert!(output.status.success(), "{output:#?}");
    assert!(
        output.stdout.lines().any(|line| line == "sent 20 acked 20"),
        "{output:#?}"
    );
    // Neither side verified the other's `logistics`.
    assert_eq!(output.peer_roles(), Some("inventory"), "{output:#?}");
    assert_received(&lines, 20, "inventory");
    assert!(!output.stdout.contains(OTHER_PASSWORD) && !output.stderr.contains(OTHER_PASSWORD));
}

#[test]
fn no_role_in_common_is_refused() {
    let (output, lines) = exchange("tcp://127.0.0.1:0", 5, OTHER_KEY, OTHER_PASSWORD);
    assert_eq!(output.status.code(), Some(1), "{output:#?}");
    let last = output.stdout.lines().last();
    assert_eq!(last, Some("sent 0 acked 0"), "{output:#?}");
    // No session, so no verified roles to report.
    assert_eq!(output.peer_roles(), None, "{output:#?}");
    assert!(
        output.stderr.contains("refused the handshake")
            && output.stderr.contains(
                "no role of the peer verified and the policy refuses unauthenticated peers"
            ),
        "{output:#?}"
    );
    assert!(lines.is_empty(), "serve received: {lines:#?}");
}

#[test]
fn config_files_give_both_roles() {
    const PASSWORD_VAR: &str = "HELLO_TEST_LOGISTICS_PASSWORD";
    let dir = TempDir::new("config");
    dir.write("inventory.key", &format!("{KEY}\n"));
    let roles = format!(
        "[roles.inventory]\n\
         shared_key_file = \"inventory.key\"\n\
         \n\
         [roles.logistics]\n\
         password_env = \"{PASSWORD_VAR}\"\n"
    );
    let server_file = dir.write(
        "server.toml",
        &format!("name = \"config-server\"\nlisten = [\"tcp://127.0.0.1:0\"]\n\n{roles}"),
    );
    let client_file = dir.write(
        "client.toml",
        &format!("name = \"config-client\"\n\n{roles}"),
    );
    let env = [(PASSWORD_VAR, PASSWORD)];

    // The file's tcp address, plus one more from the command line.
    let server = Server::start(
        &[
            "--config",
            path_str(&server_file),
            "--listen",
            "ws://127.0.0.1:0/hello",
        ],
        &env,
    );
    assert_eq!(server.urls.len(), 2, "{:?}", server.urls);
    assert!(
        server.urls[0].starts_with("tcp://127.0.0.1:"),
        "{:?}",
        server.urls
    );
    assert!(
        server.urls[1].starts_with("ws://127.0.0.1:"),
        "{:?}",
        server.urls
    );
    let output = send(
        server.url(),
        10,
        &["--config", path_str(&client_file)],
        &env,
    );
    let (status, lines) = server.terminate();
    assert!(status.success(), "serve: {status}");
    assert!(output.status.success(), "{output:#?}");
    assert!(
        output.stdout.lines().any(|line| line == "sent 10 acked 10"),
        "{output:#?}"
    );
    assert_eq!(output.peer_roles(), Some(BOTH_ROLES), "{output:#?}");
    assert_received(&lines, 10, BOTH_ROLES);
}

#[test]
fn bad_config_exits_2_naming_the_key() {
    let dir = TempDir::new("bad-config");
    let file = dir.write(
        "server.toml",
        "name = \"bad\"\nlisten = [\"tcp://127.0.0.1:0\"]\n\n\
         [roles.inventory]\nshared_key_fiel = \"inventory.key\"\n",
    );
    let output = hello(&["serve", "--config", path_str(&file)])
        .output()
        .expect("run hello serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(
        stderr.contains("roles.inventory") && stderr.contains("shared_key_fiel"),
        "{stderr}"
    );
    assert!(
        output.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );

    // A file that exists but listens nowhere, with no --listen either.
    let nowhere = dir.write("nowhere.toml", "name = \"nowhere\"\n");
    let output = hello(&["serve", "--config", path_str(&nowhere)])
        .output()
        .expect("run hello serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("listen nowhere"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "{:?}",
        String::from_utf8_lossy(&output.stdout)
    );

    // A file that does not exist.
    let missing = dir.0.join("missing.toml");
    let output = hello(&["send", "--connect", "tcp://127.0.0.1:9", "--count", "1"])
        .args(["--config", path_str(&missing)])
        .output()
        .expect("run hello send");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains("missing.toml"), "{stderr}");
}

#[test]
fn config_with_role_flags_is_a_usage_error() {
    let key = format!("inventory={KEY}");
    let output = hello(&["serve", "--config", "server.toml", "--key", &key])
        .output()
        .expect("run hello serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("--config") && stderr.contains("--key"),
        "{stderr}"
    );
    assert!(!stderr.contains(KEY), "the key is echoed: {stderr}");
}

#[test]
fn sigterm_stops_serve_with_status_0() {
    let server = Server::start(
        &["--listen", "tcp://127.0.0.1:0", "--accept-unauthenticated"],
        &[],
    );
    let (status, lines) = server.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(lines.is_empty(), "{lines:?}");
}

// ---------------------------------------------------------------------------
// hello demo
// ---------------------------------------------------------------------------

/// A running `hello demo`: its stdout line by line, with deadlines.
struct Demo {
    child: Guard,
    lines: Receiver<String>,
    stderr: JoinHandle<String>,
}

impl Demo {
    fn start() -> Self {
        let mut child = Guard(hello(&["demo"]).spawn().expect("spawn hello demo"));
        let stdout = child.0.stdout.take().expect("piped stdout");
        let stderr = collect(child.0.stderr.take().expect("piped stderr"));
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// The next stdout line; `None` once stdout is closed.
    fn next_line(&self) -> Option<String> {
        match self.lines.recv_timeout(PATIENCE) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Disconnected) => None,
            Err(RecvTimeoutError::Timeout) => panic!("hello demo: no line within {PATIENCE:?}"),
        }
    }

    /// Waits for the end: exit status, the rest of stdout, all of stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let mut rest = Vec::new();
        while let Some(line) = self.next_line() {
            rest.push(line);
        }
        let status = self.child.wait("hello demo");
        (status, rest, self.stderr.join().expect("stderr reader"))
    }

    fn pid(&self) -> String {
        self.child.0.id().to_string()
    }
}

/// The pid in the demo's first line, `demo: started hello serve (pid N) ...`.
fn serve_pid(first_line: &str) -> String {
    first_line
        .strip_prefix("demo: started hello serve (pid ")
        .and_then(|rest| rest.split_once(')'))
        .map(|(pid, _)| pid.to_owned())
        .filter(|pid| pid.parse::<u32>().is_ok())
        .unwrap_or_else(|| panic!("unexpected first line {first_line:?}"))
}

/// `kill -SIGNAL pid`; whether a process got it.
fn signal(name: &str, pid: &str) -> bool {
    Command::new("kill")
        .args([&format!("-{name}"), pid])
        .stderr(Stdio::null())
        .status()
        .expect("run kill")
        .success()
}

/// Kills a process by pid when dropped: a stopped `serve` never outlives a
/// failed test.
struct KillOnDrop(String);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = signal("KILL", &self.0);
    }
}

/// Whether `text` holds a run of exactly `len` hex digits (a printed secret).
fn has_hex_run(text: &str, len: usize) -> bool {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .any(|run| run.len() == len)
}

/// One `demo: run N of 3` section of the demo's output, up to `demo: run N ok`.
#[derive(Debug)]
struct DemoRunLines<'a> {
    url: &'a str,
    /// `serve| recv` lines: n -> (sender, roles).
    received: BTreeMap<u64, (String, String)>,
    /// The `peer` line: (server, roles).
    peer: (&'a str, &'a str),
    sent: &'a str,
}

fn demo_runs(lines: &[String]) -> Vec<DemoRunLines<'_>> {
    let mut runs = Vec::new();
    let mut rest = lines;
    for n in 1..=3 {
        let header = format!("demo: run {n} of 3: hello send --connect ");
        let start = rest
            .iter()
            .position(|line| line.starts_with(&header))
            .unwrap_or_else(|| panic!("no {header:?} line in {lines:#?}"));
        let end = rest
            .iter()
            .position(|line| line.starts_with(&format!("demo: run {n} ok: ")))
            .unwrap_or_else(|| panic!("run {n} not ok: {lines:#?}"));
        assert!(start < end, "{lines:#?}");
        let url = rest[start][header.len()..]
            .split_once(' ')
            .expect("URL, then the options")
            .0;
        let section = &rest[start + 1..end];
        let recv: Vec<String> = section
            .iter()
            .filter_map(|line| line.strip_prefix("serve| "))
            .map(str::to_owned)
            .collect();
        let mine: Vec<&String> = section
            .iter()
            .filter(|line| !line.starts_with("serve| "))
            .collect();
        assert_eq!(mine.len(), 2, "send prints `peer` and `sent`: {section:#?}");
        let peer = mine[0]
            .strip_prefix("peer ")
            .and_then(|rest| rest.split_once(" roles="))
            .unwrap_or_else(|| panic!("not a peer line: {:?}", mine[0]));
        runs.push(DemoRunLines {
            url,
            received: recv_lines(&recv),
            peer,
            sent: mine[1],
        });
        rest = &rest[end + 1..];
    }
    runs
}

#[test]
fn demo_runs_serve_as_a_child_and_checks_every_run() {
    let demo = Demo::start();
    let (status, lines, stderr) = demo.finish();
    assert!(status.success(), "{status}\n{lines:#?}\nstderr:\n{stderr}");
    assert!(stderr.is_empty(), "stderr:\n{stderr}");
    serve_pid(&lines[0]);

    let listening = |scheme: &str| {
        lines
            .iter()
            .find_map(|line| line.strip_prefix(&format!("serve| listening {scheme}://127.0.0.1:")))
            .map(|rest| format!("{scheme}://127.0.0.1:{rest}"))
            .unwrap_or_else(|| panic!("no {scheme} listening line: {lines:#?}"))
    };
    let (tcp, ws) = (listening("tcp"), listening("ws"));
    assert!(ws.ends_with("/hello"), "{ws}");
    let ready = lines.iter().position(|line| line == "serve| ready");
    assert_eq!(ready, Some(3), "{lines:#?}");

    let runs = demo_runs(&lines);
    let urls: Vec<&str> = runs.iter().map(|run| run.url).collect();
    assert_eq!(urls, [tcp.as_str(), ws.as_str(), tcp.as_str()]);
    let expected = [BOTH_ROLES_DEMO, BOTH_ROLES_DEMO, "orders"];
    let mut senders = std::collections::BTreeSet::new();
    for (run, roles) in runs.iter().zip(expected) {
        assert_eq!(run.sent, "sent 5 acked 5", "{run:#?}");
        assert_eq!(
            run.peer.1, roles,
            "the sender's view of the server: {run:#?}"
        );
        assert_eq!(
            run.received.keys().copied().collect::<Vec<_>>(),
            [1, 2, 3, 4, 5],
            "{run:#?}"
        );
        let from: std::collections::BTreeSet<_> =
            run.received.values().map(|(from, _)| from).collect();
        assert_eq!(from.len(), 1, "one sending platform per run: {run:#?}");
        assert!(
            senders.insert(from.into_iter().next().cloned()),
            "a new sender per run"
        );
        for (n, (_, got)) in &run.received {
            assert_eq!(got, roles, "the server's view of message {n}: {run:#?}");
        }
    }
    let servers: std::collections::BTreeSet<_> = runs.iter().map(|run| run.peer.0).collect();
    assert_eq!(servers.len(), 1, "one server throughout: {runs:#?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some(
            "demo ok: every message acknowledged; the wrong password's role verified on neither side"
        )
    );
    // The 32-byte key would print as 64 hex digits; platform ids have 32.
    let all = lines.join("\n");
    assert!(!has_hex_run(&all, 64), "a secret is printed:\n{all}");
    assert!(
        !all.contains("--key") && !all.contains("--password"),
        "{all}"
    );
}

/// The demo's roles, as both sides print them.
const BOTH_ROLES_DEMO: &str = "logistics,orders";

#[test]
fn an_interrupted_demo_stops_its_child() {
    // The child is stopped as soon as its pid is printed, so the demo waits
    // for it; should the whole demo have finished first, try again.
    for _ in 0..5 {
        let demo = Demo::start();
        let first = demo.next_line().expect("a first line");
        let pid = serve_pid(&first);
        let serve = KillOnDrop(pid.clone());
        if !signal("STOP", &pid) {
            let _ = demo.finish();
            continue;
        }
        assert!(signal("TERM", &demo.pid()), "the demo is running");
        let (status, lines, stderr) = demo.finish();
        if status.success() {
            continue;
        }
        assert_eq!(status.code(), Some(130), "{status}\n{lines:#?}\n{stderr}");
        assert!(
            stderr.contains("demo: interrupted; hello serve is stopped"),
            "{stderr}"
        );
        assert!(
            !lines.iter().any(|line| line.starts_with("demo ok")),
            "{lines:#?}"
        );
        // Killed and reaped by the demo: not even a zombie is left.
        assert!(
            !signal("0", &pid),
            "hello serve (pid {pid}) outlived the demo"
        );
        drop(serve);
        return;
    }
    panic!("the demo finished before its child could be stopped, 5 times");
}
