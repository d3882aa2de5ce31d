//! `hello`: two Jadeite platforms in two processes, one calling a service
//! of the other over TCP or WebSocket.
//!
//! ```text
//! hello serve --listen tcp://127.0.0.1:7000 --key orders=<64 hex digits>
//! hello send --connect tcp://127.0.0.1:7000 --count 10 --key orders=<same hex>
//!
//! hello serve --config server.toml [--listen URL]...
//! hello send --connect tcp://127.0.0.1:7000 --count 10 --config client.toml
//!
//! hello demo
//! ```
//!
//! `serve` provides the [`Hello`] service from a [`Greeter`] component,
//! prints `listening <url>` per address (with the real port for port 0),
//! `ready`, then per call `recv <n> from <platform id> roles=<role,...>`
//! (the caller's verified roles) and returns `n`. `send` connects, finds the
//! service on that platform, calls it with 1..=N, at most W calls in flight,
//! then prints `peer <platform id> roles=<role,...>` with the server's roles
//! it verified (if a session was made) and `sent <S> acked <M>`, a call
//! being acknowledged when it returns its own `n`.
//!
//! `demo` shows both ends at once: it starts this same binary
//! (`std::env::current_exe`) as a child `hello serve` on
//! `tcp://127.0.0.1:0` and `ws://127.0.0.1:0/hello` with a shared-key role
//! `orders` and a password role `logistics` (a fresh random 32-byte key and
//! password, never printed), reads its `listening` lines and `ready`, then
//! runs `send` in process three times, each from a new platform: over TCP and
//! over WebSocket with the server's key and password, then over TCP with the
//! key and a wrong password. Every line the child writes is relayed with the
//! prefix `serve| `, so its `recv ... roles=` lines show what the server
//! verified; `send`'s own `peer` and `sent` lines show the rest. It checks
//! each run (all acknowledged; both roles verified on both sides, and in the
//! last run `orders` alone), prints `demo ok: ...` and exits with 0 only if
//! all three went as expected. The child is killed and reaped on every way
//! out, errors and SIGINT/SIGTERM (status 130) included.
//!
//! Roles come either from flags (`--key`, `--password`,
//! `--accept-unauthenticated`) or from a TOML file given with `--config`
//! (`Platform::from_config`: name, listen and connect addresses, the
//! unauthenticated policy, `[roles.NAME]` with secrets read from files or
//! environment variables, `[limits]`, `[channel]`), never from both. With
//! `--config`, `serve` listens on the file's `listen` addresses and on every
//! `--listen`; `send` sends to `--connect` only, though its platform also
//! listens on and dials whatever the file names.
//!
//! Everything for people and scripts goes to stdout; errors and warnings go
//! to stderr. Usage and config errors exit with status 2, a failed run with 1.
//! Secrets given on the command line are visible to other local users
//! (`ps`): fine for an example, not for production; `--config` keeps them in
//! files or the environment instead. (`demo` passes its throwaway secrets to
//! its child that way too.)

#![forbid(unsafe_code)]

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use jadeite::security::primitives::Secret;
use jadeite::security::{Credentials, Password, RoleName, SharedKey, UnauthenticatedPolicy};
use jadeite::transport::{Scheme, TransportAddress};
use jadeite::{
    CallContext, Component, ConfigFileError, Platform, PlatformBuilder, PlatformError, PlatformId,
    Scope,
};
use jadeite_tcp::TcpTransport;
use jadeite_websocket::WebSocketTransport;
use tokio::task::JoinSet;
use tokio::time::Instant;

const USAGE: &str = "\
Usage:
  hello serve --listen URL [--listen URL]... [ROLES] [--accept-unauthenticated]
  hello serve --config FILE [--listen URL]...
  hello send --connect URL --count N [--window W] [--timeout-secs S]
             [ROLES] [--accept-unauthenticated]
  hello send --connect URL --count N [--window W] [--timeout-secs S]
             --config FILE
  hello demo
  hello --help

URL   tcp://HOST:PORT or ws://HOST:PORT/PATH (serve: port 0 picks a free port)
ROLES any number of
        --key ROLE=HEX         a shared-key role; HEX is 64 to 128 hex digits
                               (32 to 64 bytes)
        --password ROLE=TEXT   a password role (verified with J-PAKE)
      ROLE is 1 to 64 characters of A-Z a-z 0-9 . _ -
      A role verifies when both ends hold the same secret for it.
--accept-unauthenticated
      keep a session in which no role of the peer verified (encryption only);
      without it such a handshake is refused. Both ends need it when they
      share no role.
--config FILE
      take the platform from a TOML file instead: name, listen, connect,
      unauthenticated = \"refuse\" | \"accept\", [roles.NAME] with
      shared_key_file / shared_key_env (hex), password_file / password_env,
      certificate_chain + private_key, trust_anchor; [limits], [channel].
      Relative paths are relative to FILE. Cannot be combined with ROLES or
      --accept-unauthenticated. serve listens on the file's listen addresses
      and on every --listen; send sends to --connect only (its platform still
      listens on and dials what the file names).

serve provides the Hello service and prints `listening URL` for each
  address, then `ready`, then one line `recv N from PLATFORM roles=ROLE,...`
  per call (the caller's verified roles), answering each with N. It runs
  until SIGINT or SIGTERM (exit status 0).
send calls the server's Hello service with 1..=N (N >= 1), at most W calls
  in flight (default 16), waits at most S seconds in all (default 30), prints
  `peer PLATFORM roles=ROLE,ROLE,...` (the server's roles that verified) if a
  session was made, then `sent SENT acked ACKED`, and exits with 0 if every
  call was answered with its own N, 1 otherwise.
demo starts this binary as `hello serve` in a child process on
  tcp://127.0.0.1:0 and ws://127.0.0.1:0/hello with a shared-key role
  `orders` and a password role `logistics` (fresh random secrets, not
  printed), relays its lines prefixed with `serve| `, and runs `send` against
  it three times with 5 calls: over TCP and over WebSocket with the right
  key and password, then over TCP with a wrong password, whose role must then
  be missing from the roles both sides verified. Exits with 0 if all three
  runs went as expected, 1 otherwise, 130 on SIGINT or SIGTERM; the child is
  always stopped.
Bad usage or a bad config file exits with status 2.";

const DEFAULT_WINDOW: usize = 16;
const MAX_WINDOW: usize = 65_536;
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const MAX_TIMEOUT_SECS: u64 = 1_000_000;
/// How long `send` waits for the server's verified roles after the exchange.
const PEER_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::main]
async fn main() -> ExitCode {
    let command = match parse(std::env::args_os().skip(1).collect()) {
        Ok(command) => command,
        Err(error) => {
            eprintln!("error: {error}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Serve(args) => serve(args).await,
        Command::Send(args) => send(args).await,
        Command::Demo => demo().await,
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

#[derive(Debug)]
enum Command {
    Help,
    Serve(ServeArgs),
    Send(SendArgs),
    Demo,
}

#[derive(Debug)]
struct ServeArgs {
    /// `--listen` flags; with `--config`, in addition to the file's `listen`.
    listen: Vec<TransportAddress>,
    setup: Setup,
}

#[derive(Debug)]
struct SendArgs {
    connect: TransportAddress,
    count: u64,
    window: usize,
    timeout: Duration,
    setup: Setup,
}

/// Where the platform's roles and policy come from.
#[derive(Debug)]
enum Setup {
    /// `--key`, `--password`, `--accept-unauthenticated`.
    Flags(Security),
    /// A TOML file (`--config`), read by `Platform::from_config`.
    Config(PathBuf),
}

impl Setup {
    /// Refuses role flags next to `--config`: the file alone describes the roles.
    fn new(security: Security, config: Option<PathBuf>) -> Result<Self, UsageError> {
        match (config, security.first_flag) {
            (None, _) => Ok(Self::Flags(security)),
            (Some(path), None) => Ok(Self::Config(path)),
            (Some(_), Some(flag)) => Err(UsageError(format!(
                "--config cannot be combined with {flag}: with --config the roles and \
                 the unauthenticated policy come from the file alone"
            ))),
        }
    }

    /// The builder, with the TCP and WebSocket transports; `name` unless the
    /// config file names the platform.
    fn builder(self, name: &str) -> Result<PlatformBuilder, ConfigFileError> {
        let builder = match self {
            Self::Flags(security) => security.builder(name),
            Self::Config(path) => Platform::from_config(path)?,
        };
        // Only service calls here: raw application messages are dropped.
        Ok(builder
            .application_messages(false)
            .transport(Arc::new(TcpTransport::new()))
            .transport(Arc::new(WebSocketTransport::new())))
    }
}

/// `--config FILE`, at most once.
fn parse_config(
    config: &mut Option<PathBuf>,
    flag: &str,
    inline: Option<String>,
    args: &mut Args,
) -> Result<(), UsageError> {
    if config.is_some() {
        return Err(UsageError(format!("{flag} is given more than once")));
    }
    let value = args.value(flag, inline)?;
    if value.is_empty() {
        return Err(UsageError(format!("{flag} needs a file name")));
    }
    *config = Some(PathBuf::from(value));
    Ok(())
}

/// Roles and policy, common to both subcommands.
#[derive(Debug, Default)]
struct Security {
    credentials: Credentials,
    roles: BTreeSet<RoleName>,
    accept_unauthenticated: bool,
    /// The first of these flags given, to name it in a conflict with `--config`.
    first_flag: Option<&'static str>,
}

impl Security {
    /// Handles `--key`, `--password` and `--accept-unauthenticated`;
    /// `Ok(false)` if `flag` is none of them.
    fn take(
        &mut self,
        flag: &str,
        inline: Option<String>,
        args: &mut Args,
    ) -> Result<bool, UsageError> {
        let known = match flag {
            "--key" => "--key",
            "--password" => "--password",
            "--accept-unauthenticated" => "--accept-unauthenticated",
            _ => return Ok(false),
        };
        self.first_flag.get_or_insert(known);
        match known {
            "--key" => {
                let value = args.value(flag, inline)?;
                let (role, hex) = self.role_and_secret(flag, &value)?;
                let bytes = decode_hex(hex).ok_or_else(|| {
                    UsageError(format!(
                        "{flag} {role}=...: the key must be 64 to 128 hex digits \
                         (32 to 64 bytes), got {} characters",
                        hex.chars().count()
                    ))
                })?;
                let key = SharedKey::new(&bytes)
                    .map_err(|error| UsageError(format!("{flag} {role}=...: {error}")))?;
                self.credentials = std::mem::take(&mut self.credentials).with_shared_key(role, key);
            }
            "--password" => {
                let value = args.value(flag, inline)?;
                let (role, text) = self.role_and_secret(flag, &value)?;
                let password = Password::new(text).map_err(|_| {
                    UsageError(format!(
                        "{flag} {role}=...: the password must be 1 to 1024 bytes"
                    ))
                })?;
                self.credentials =
                    std::mem::take(&mut self.credentials).with_password(role, password);
            }
            _ => {
                no_value(flag, inline)?;
                self.accept_unauthenticated = true;
            }
        }
        Ok(true)
    }

    /// Splits `ROLE=SECRET`, validates the role and refuses a role given twice.
    fn role_and_secret<'a>(
        &mut self,
        flag: &str,
        value: &'a str,
    ) -> Result<(RoleName, &'a str), UsageError> {
        let (name, secret) = value
            .split_once('=')
            .ok_or_else(|| UsageError(format!("{flag} expects ROLE=SECRET")))?;
        let role = RoleName::new(name).map_err(|_| {
            UsageError(format!(
                "{flag}: invalid role name {name:?}: expected 1 to 64 characters of \
                 A-Z a-z 0-9 . _ -"
            ))
        })?;
        if !self.roles.insert(role.clone()) {
            return Err(UsageError(format!(
                "{flag}: role {role} is given more than once"
            )));
        }
        Ok((role, secret))
    }

    fn builder(self, name: &str) -> PlatformBuilder {
        let policy = if self.accept_unauthenticated {
            UnauthenticatedPolicy::Accept
        } else {
            UnauthenticatedPolicy::Refuse
        };
        Platform::builder(name)
            .credentials(self.credentials)
            .unauthenticated(policy)
    }
}

#[derive(Debug)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The remaining arguments, each `--flag value` or `--flag=value`.
#[derive(Debug)]
struct Args(std::vec::IntoIter<String>);

impl Args {
    /// The next flag and its inline `=value`, if any.
    fn next_flag(&mut self) -> Result<Option<(String, Option<String>)>, UsageError> {
        let Some(arg) = self.0.next() else {
            return Ok(None);
        };
        if !arg.starts_with("--") {
            return Err(UsageError(format!("unexpected argument {arg:?}")));
        }
        Ok(Some(match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg, None),
        }))
    }

    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, UsageError> {
        match inline {
            Some(value) => Ok(value),
            None => self
                .0
                .next()
                .ok_or_else(|| UsageError(format!("{flag} needs a value"))),
        }
    }
}

fn no_value(flag: &str, inline: Option<String>) -> Result<(), UsageError> {
    match inline {
        Some(_) => Err(UsageError(format!("{flag} takes no value"))),
        None => Ok(()),
    }
}

fn parse(raw: Vec<OsString>) -> Result<Command, UsageError> {
    let strings = raw
        .into_iter()
        .map(|arg| {
            arg.into_string()
                .map_err(|arg| UsageError(format!("argument {arg:?} is not valid UTF-8")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut args = Args(strings.into_iter());
    let subcommand = args
        .0
        .next()
        .ok_or_else(|| UsageError("missing subcommand (serve, send or demo)".to_owned()))?;
    match subcommand.as_str() {
        "serve" => parse_serve(args),
        "send" => parse_send(args),
        "demo" => parse_demo(args),
        "help" | "--help" | "-h" => Ok(Command::Help),
        other => Err(UsageError(format!(
            "unknown subcommand {other:?} (expected serve, send or demo)"
        ))),
    }
}

fn parse_demo(mut args: Args) -> Result<Command, UsageError> {
    let next = args
        .next_flag()
        .map_err(|UsageError(message)| UsageError(format!("demo: {message}")))?;
    match next {
        None => Ok(Command::Demo),
        Some((flag, _)) if flag == "--help" => Ok(Command::Help),
        Some((flag, _)) => Err(UsageError(format!(
            "demo: unknown option {flag} (demo takes no options)"
        ))),
    }
}

fn parse_serve(mut args: Args) -> Result<Command, UsageError> {
    let mut listen = Vec::new();
    let mut security = Security::default();
    let mut config = None;
    while let Some((flag, inline)) = args.next_flag()? {
        match flag.as_str() {
            "--help" => return Ok(Command::Help),
            "--listen" => listen.push(parse_url(&flag, &args.value(&flag, inline)?)?),
            "--config" => parse_config(&mut config, &flag, inline, &mut args)?,
            _ if security.take(&flag, inline, &mut args)? => {}
            _ => return Err(UsageError(format!("serve: unknown option {flag}"))),
        }
    }
    // With --config the file may name the addresses; whether the platform
    // ends up listening anywhere is checked once it has started.
    if listen.is_empty() && config.is_none() {
        return Err(UsageError(
            "serve needs --listen URL (or --config FILE)".to_owned(),
        ));
    }
    let setup = Setup::new(security, config)?;
    Ok(Command::Serve(ServeArgs { listen, setup }))
}

fn parse_send(mut args: Args) -> Result<Command, UsageError> {
    let mut connect = None;
    let mut count = None;
    let mut window = DEFAULT_WINDOW;
    let mut timeout_secs = DEFAULT_TIMEOUT_SECS;
    let mut security = Security::default();
    let mut config = None;
    while let Some((flag, inline)) = args.next_flag()? {
        match flag.as_str() {
            "--help" => return Ok(Command::Help),
            "--connect" if connect.is_some() => {
                return Err(UsageError("--connect is given more than once".to_owned()));
            }
            "--connect" => connect = Some(parse_url(&flag, &args.value(&flag, inline)?)?),
            "--count" => {
                count = Some(parse_number(
                    &flag,
                    &args.value(&flag, inline)?,
                    1,
                    u64::MAX,
                )?)
            }
            "--window" => {
                let value = parse_number(&flag, &args.value(&flag, inline)?, 1, MAX_WINDOW as u64)?;
                window = usize::try_from(value).unwrap_or(MAX_WINDOW);
            }
            "--timeout-secs" => {
                timeout_secs =
                    parse_number(&flag, &args.value(&flag, inline)?, 1, MAX_TIMEOUT_SECS)?;
            }
            "--config" => parse_config(&mut config, &flag, inline, &mut args)?,
            _ if security.take(&flag, inline, &mut args)? => {}
            _ => return Err(UsageError(format!("send: unknown option {flag}"))),
        }
    }
    Ok(Command::Send(SendArgs {
        connect: connect.ok_or_else(|| UsageError("send needs --connect URL".to_owned()))?,
        count: count.ok_or_else(|| UsageError("send needs --count N".to_owned()))?,
        window,
        timeout: Duration::from_secs(timeout_secs),
        setup: Setup::new(security, config)?,
    }))
}

fn parse_url(flag: &str, text: &str) -> Result<TransportAddress, UsageError> {
    let address: TransportAddress = text
        .parse()
        .map_err(|error| UsageError(format!("{flag}: {error}")))?;
    match address.scheme() {
        Scheme::Tcp | Scheme::WebSocket => Ok(address),
        _ => Err(UsageError(format!(
            "{flag}: {text:?}: expected tcp://HOST:PORT or ws://HOST:PORT/PATH"
        ))),
    }
}

fn parse_number(flag: &str, text: &str, min: u64, max: u64) -> Result<u64, UsageError> {
    text.parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| {
            UsageError(format!(
                "{flag}: expected a whole number from {min} to {max}, got {text:?}"
            ))
        })
}

/// 64..=128 hex digits, an even number of them, as bytes.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !(64..=128).contains(&text.len()) || !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| (b as char).to_digit(16);
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// One line on stdout, flushed at once so a reading process sees it.
/// A closed stdout is not an error worth stopping for.
fn say(line: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(format_args!("{line}\n"));
    let _ = stdout.flush();
}

/// `a,b,c`: role names, in order (a `BTreeSet` is sorted).
fn role_list(roles: &BTreeSet<RoleName>) -> String {
    roles
        .iter()
        .map(RoleName::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// Exit status for a platform that would not start: 2 when its configuration
/// is at fault (no transport for a scheme, invalid security settings or
/// limits), 1 otherwise (an address in use, ...).
fn start_failure(error: &PlatformError) -> ExitCode {
    eprintln!("error: cannot start the platform: {error}");
    match error {
        PlatformError::Config(_) | PlatformError::Limits(_) | PlatformError::NoTransport(_) => {
            ExitCode::from(2)
        }
        _ => ExitCode::FAILURE,
    }
}

// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

/// Call `n` of a `send` run, answered with `n` as its acknowledgement.
///
/// `unrestricted`: the platform's unauthenticated policy already decides
/// who gets a session (a peer with a verified role, or anyone under
/// `--accept-unauthenticated`), and every call carries the roles that
/// verified. The default rule would refuse, and hide the service from, the
/// unauthenticated peers the operator chose to accept.
#[jadeite::service(unrestricted)]
trait Hello {
    async fn hello(&self, cx: &CallContext, n: u64) -> u64;
}

/// `serve`'s component: a `recv` line per call, with the caller's verified roles.
struct Greeter;

impl Component for Greeter {}

impl Hello for Greeter {
    async fn hello(&self, cx: &CallContext, n: u64) -> u64 {
        say(format_args!(
            "recv {n} from {} roles={}",
            cx.caller_platform(),
            role_list(cx.verified_roles())
        ));
        n
    }
}

// ---------------------------------------------------------------------------
// serve
// ---------------------------------------------------------------------------

async fn serve(args: ServeArgs) -> ExitCode {
    let mut stop = match StopSignal::new() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("error: cannot watch for SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut builder = match args.setup.builder("hello-server") {
        Ok(builder) => builder,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    for address in &args.listen {
        builder = builder.listen(address.clone());
    }
    let platform = match builder.start().await {
        Ok(platform) => platform,
        Err(error) => return start_failure(&error),
    };
    let addresses = platform.listen_addresses();
    if addresses.is_empty() {
        // Only possible with --config (without it, --listen is required):
        // the file has no `listen` address and no --listen was given.
        platform.shutdown();
        eprintln!(
            "error: serve would listen nowhere: give --listen URL or a `listen` \
             address in the config file"
        );
        return ExitCode::from(2);
    }
    let greeter = platform.spawn(Greeter).provide::<HelloServer>();
    if let Err(error) = greeter.start().await {
        platform.shutdown();
        eprintln!("error: cannot start the Hello service: {error}");
        return ExitCode::FAILURE;
    }
    for address in addresses {
        say(format_args!("listening {address}"));
    }
    say(format_args!("ready"));
    stop.wait().await;
    platform.shutdown();
    ExitCode::SUCCESS
}

/// SIGINT (Ctrl-C) or, on Unix, SIGTERM.
struct StopSignal {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StopSignal")
    }
}

impl StopSignal {
    /// Registers the handlers now, so a signal arriving right after `ready` counts.
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            #[cfg(unix)]
            terminate: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    async fn wait(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

// ---------------------------------------------------------------------------
// send
// ---------------------------------------------------------------------------

async fn send(args: SendArgs) -> ExitCode {
    match run_send(args).await {
        Ok(report) if report.all_acked() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(status) => status,
    }
}

/// What one `send` did; its `peer` and `sent` lines are printed already.
#[derive(Debug)]
struct SendReport {
    /// The sending platform: the one `serve` names in its `recv` lines.
    client: PlatformId,
    /// The server's roles this side verified, if a session was made.
    server_roles: Option<Arc<BTreeSet<RoleName>>>,
    count: u64,
    sent: u64,
    acked: u64,
}

impl SendReport {
    fn all_acked(&self) -> bool {
        self.acked == self.count
    }
}

/// The whole of `send` but the exit status: starts the platform, runs the
/// exchange, prints `peer ...` and `sent ... acked ...`. `Err` carries the
/// exit status when the platform could not be built or started (the error
/// is printed).
async fn run_send(args: SendArgs) -> Result<SendReport, ExitCode> {
    let deadline = Instant::now() + args.timeout;
    let builder = match args.setup.builder("hello-client") {
        Ok(builder) => builder,
        Err(error) => {
            eprintln!("error: {error}");
            return Err(ExitCode::from(2));
        }
    };
    let platform = match builder.start().await {
        Ok(platform) => platform,
        Err(error) => return Err(start_failure(&error)),
    };
    let mut run = Run {
        count: args.count,
        sent: 0,
        acked: 0,
    };
    let mut server = None;
    let outcome = match tokio::time::timeout_at(deadline, platform.connect(&args.connect)).await {
        Err(_) => Err(format!("no connection to {} in time", args.connect)),
        Ok(Err(error)) => Err(format!("cannot connect to {}: {error}", args.connect)),
        Ok(Ok(peer)) => {
            server = Some(peer);
            run.exchange(&platform, peer, args.window, deadline).await
        }
    };
    if let Err(error) = outcome {
        eprintln!("error: {error}");
    }
    let mut server_roles = None;
    if let Some(peer) = server {
        // Before shutdown, which ends the session. The peer's actor answers
        // between other work, so this waits a little, never forever.
        let roles = tokio::time::timeout(PEER_QUERY_TIMEOUT, platform.peer_roles(peer)).await;
        if let Ok(Some(roles)) = roles {
            say(format_args!("peer {peer} roles={}", role_list(&roles)));
            server_roles = Some(roles);
        }
    }
    say(format_args!("sent {} acked {}", run.sent, run.acked));
    platform.shutdown();
    Ok(SendReport {
        client: platform.id(),
        server_roles,
        count: run.count,
        sent: run.sent,
        acked: run.acked,
    })
}

/// Calls made and acknowledged by one `send`.
#[derive(Debug)]
struct Run {
    count: u64,
    sent: u64,
    acked: u64,
}

impl Run {
    /// Finds the server's `Hello` service, then calls it with 1..=count,
    /// at most `window` calls in flight. A call is acknowledged when it
    /// returns its own `n`; the first failed call ends the run.
    async fn exchange(
        &mut self,
        platform: &Platform,
        server: PlatformId,
        window: usize,
        deadline: Instant,
    ) -> Result<(), String> {
        let found = platform.find::<HelloClient>(Scope::Platform(server));
        let hello = match tokio::time::timeout_at(deadline, found).await {
            Err(_) => return Err(format!("no Hello service on {server} in time")),
            Ok(Err(error)) => return Err(format!("cannot find Hello on {server}: {error}")),
            // Every call may take until the run's deadline, which ends them all.
            Ok(Ok(hello)) => hello.with_timeout(deadline.saturating_duration_since(Instant::now())),
        };
        // Dropping the set (on a timeout or an error) cancels the calls in it.
        let mut calls = JoinSet::new();
        loop {
            while calls.len() < window && self.sent < self.count {
                let n = self.sent + 1;
                let call = hello.hello(n);
                calls.spawn(async move { (n, call.await) });
                self.sent = n;
            }
            match tokio::time::timeout_at(deadline, calls.join_next()).await {
                Err(_) => {
                    return Err(format!(
                        "timed out with {} of {} calls acknowledged",
                        self.acked, self.count
                    ));
                }
                Ok(None) => return Ok(()),
                Ok(Some(Ok((n, Ok(m))))) if m == n => self.acked += 1,
                Ok(Some(Ok((n, Ok(m))))) => eprintln!("warning: call {n} answered {m}"),
                Ok(Some(Ok((n, Err(error))))) => return Err(format!("call {n}: {error}")),
                Ok(Some(Err(error))) => return Err(format!("a call failed: {error}")),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// demo
// ---------------------------------------------------------------------------

/// Calls each demo run makes.
const DEMO_COUNT: u64 = 5;
/// `--timeout-secs` of each demo run.
const DEMO_SEND_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the child's `ready`, and for its `recv` lines after a run.
const DEMO_PATIENCE: Duration = Duration::from_secs(30);
/// The demo's roles: one proved by a shared key, one by a password.
const DEMO_KEY_ROLE: &str = "orders";
const DEMO_PASSWORD_ROLE: &str = "logistics";
/// Put before every line the child writes, on stdout and on stderr.
const SERVE_PREFIX: &str = "serve| ";

/// Exit status after SIGINT or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// `hello demo`: `serve` as a child process, three `send` runs against it.
async fn demo() -> ExitCode {
    let mut stop = match StopSignal::new() {
        Ok(stop) => stop,
        Err(error) => {
            eprintln!("error: cannot watch for SIGTERM: {error}");
            return ExitCode::FAILURE;
        }
    };
    let secrets = match DemoSecrets::generate() {
        Ok(secrets) => secrets,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut serve = match ServeChild::spawn(&secrets) {
        Ok(serve) => serve,
        Err(error) => {
            eprintln!("error: cannot start hello serve: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = tokio::select! {
        biased;
        () = stop.wait() => None,
        outcome = run_demo(&mut serve, &secrets) => Some(outcome),
    };
    // Kills and reaps the child, and relays what it wrote last, on every path.
    drop(serve);
    match outcome {
        None => {
            eprintln!("demo: interrupted; hello serve is stopped");
            ExitCode::from(INTERRUPTED)
        }
        Some(Ok(())) => {
            say(format_args!(
                "demo ok: every message acknowledged; the wrong password's role \
                 verified on neither side"
            ));
            ExitCode::SUCCESS
        }
        Some(Err(error)) => {
            eprintln!("demo failed: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One `send` run of the demo and what it must show.
#[derive(Debug)]
struct DemoRun<'a> {
    url: TransportAddress,
    password: &'a str,
    /// How the run's secrets compare with the server's, for people.
    secrets: &'static str,
    /// The verified roles expected on both sides, as `role_list` prints them.
    roles: String,
}

async fn run_demo(serve: &mut ServeChild, secrets: &DemoSecrets) -> Result<(), String> {
    let (tcp, ws) = serve.wait_ready().await?;
    let both = role_list(&BTreeSet::from([
        demo_role(DEMO_KEY_ROLE)?,
        demo_role(DEMO_PASSWORD_ROLE)?,
    ]));
    let runs = [
        DemoRun {
            url: tcp.clone(),
            password: &secrets.password,
            secrets: "the server's key and password",
            roles: both.clone(),
        },
        DemoRun {
            url: ws,
            password: &secrets.password,
            secrets: "the server's key and password",
            roles: both,
        },
        DemoRun {
            url: tcp,
            password: &secrets.wrong_password,
            secrets: "the server's key and a wrong password",
            roles: DEMO_KEY_ROLE.to_owned(),
        },
    ];
    let total = runs.len();
    for (index, run) in runs.into_iter().enumerate() {
        let n = index + 1;
        say(format_args!(
            "demo: run {n} of {total}: hello send --connect {} --count {DEMO_COUNT} \
             with {}",
            run.url, run.secrets
        ));
        let args = SendArgs {
            connect: run.url,
            count: DEMO_COUNT,
            window: DEFAULT_WINDOW,
            timeout: DEMO_SEND_TIMEOUT,
            setup: Setup::Flags(demo_security(secrets, run.password)?),
        };
        let report = run_send(args)
            .await
            .map_err(|_| format!("run {n}: the sending platform did not start"))?;
        if !report.all_acked() {
            return Err(format!(
                "run {n}: {} of {} calls made, {} acknowledged",
                report.sent, report.count, report.acked
            ));
        }
        let server_roles = report.server_roles.as_deref().map(role_list);
        if server_roles.as_deref() != Some(run.roles.as_str()) {
            return Err(format!(
                "run {n}: the sender verified the server's roles {}, expected {}",
                server_roles.as_deref().unwrap_or("(no session)"),
                run.roles
            ));
        }
        let client_roles = serve.recv_lines(report.client, DEMO_COUNT).await?;
        if client_roles != BTreeSet::from([run.roles.clone()]) {
            return Err(format!(
                "run {n}: the server verified the sender's roles {client_roles:?}, \
                 expected {}",
                run.roles
            ));
        }
        say(format_args!(
            "demo: run {n} ok: {} of {} acknowledged; verified roles={} on both sides",
            report.acked, report.count, run.roles
        ));
    }
    Ok(())
}

fn demo_role(name: &str) -> Result<RoleName, String> {
    RoleName::new(name).map_err(|error| format!("role {name}: {error}"))
}

/// The demo's roles for one run: the server's key, and `password`.
fn demo_security(secrets: &DemoSecrets, password: &str) -> Result<Security, String> {
    let key_role = demo_role(DEMO_KEY_ROLE)?;
    let password_role = demo_role(DEMO_PASSWORD_ROLE)?;
    let key =
        SharedKey::new(secrets.key.expose()).map_err(|error| format!("the demo key: {error}"))?;
    let password =
        Password::new(password).map_err(|error| format!("the demo password: {error}"))?;
    Ok(Security {
        credentials: Credentials::new()
            .with_shared_key(key_role.clone(), key)
            .with_password(password_role.clone(), password),
        roles: BTreeSet::from([key_role, password_role]),
        accept_unauthenticated: false,
        first_flag: None,
    })
}

/// Fresh random secrets for one demo; never printed.
struct DemoSecrets {
    key: Secret<32>,
    password: String,
    wrong_password: String,
}

impl fmt::Debug for DemoSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DemoSecrets(..)")
    }
}

impl DemoSecrets {
    fn generate() -> Result<Self, String> {
        let failed = |error| format!("random number generator failed: {error}");
        let password = || Secret::<12>::random().map(|bytes| encode_hex(bytes.expose()));
        let key = Secret::random().map_err(failed)?;
        let password = password().map_err(failed)?;
        let mut wrong_password = password.clone();
        while wrong_password == password {
            wrong_password = Secret::<12>::random()
                .map(|bytes| encode_hex(bytes.expose()))
                .map_err(failed)?;
        }
        Ok(Self {
            key,
            password,
            wrong_password,
        })
    }
}

fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hello serve` running as a child process. Dropping it kills and reaps the
/// child and waits until everything it wrote is relayed.
struct ServeChild {
    child: Child,
    /// The child's stdout lines (each also relayed to stdout with the prefix).
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    relays: Vec<thread::JoinHandle<()>>,
}

impl fmt::Debug for ServeChild {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeChild")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl ServeChild {
    /// Starts this binary as `hello serve` on TCP and WebSocket, port 0,
    /// with the demo's key and (right) password, and says so.
    fn spawn(secrets: &DemoSecrets) -> std::io::Result<Self> {
        let key = format!("{DEMO_KEY_ROLE}={}", encode_hex(secrets.key.expose()));
        let password = format!("{DEMO_PASSWORD_ROLE}={}", secrets.password);
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["serve", "--listen", "tcp://127.0.0.1:0"])
            .args(["--listen", "ws://127.0.0.1:0/hello"])
            .args(["--key", &key, "--password", &password])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let mut serve = Self {
            child,
            lines,
            relays: Vec::new(),
        };
        // Before the relays start, so this line comes before the child's.
        say(format_args!(
            "demo: started hello serve (pid {}) with a shared-key role {DEMO_KEY_ROLE} \
             and a password role {DEMO_PASSWORD_ROLE} (fresh random secrets, not shown)",
            serve.child.id()
        ));
        let missing = || std::io::Error::other("the child's output is not piped");
        let stdout = serve.child.stdout.take().ok_or_else(missing)?;
        let stderr = serve.child.stderr.take().ok_or_else(missing)?;
        serve.relays.push(thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                say(format_args!("{SERVE_PREFIX}{line}"));
                // Once the demo stopped listening, relaying alone goes on.
                let _ = tx.send(line);
            }
        }));
        serve.relays.push(thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                eprintln!("{SERVE_PREFIX}{line}");
            }
        }));
        Ok(serve)
    }

    /// The next stdout line, waiting until `deadline`.
    async fn next_line(&mut self, deadline: Instant, waiting_for: &str) -> Result<String, String> {
        match tokio::time::timeout_at(deadline, self.lines.recv()).await {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(format!(
                "hello serve closed its output ({}) while the demo waited for {waiting_for}",
                self.status()
            )),
            Err(_) => Err(format!(
                "no {waiting_for} from hello serve within {DEMO_PATIENCE:?}"
            )),
        }
    }

    /// The child's exit status if it has ended, for error messages.
    fn status(&mut self) -> String {
        match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            Ok(None) => "still running".to_owned(),
            Err(error) => format!("status unknown: {error}"),
        }
    }

    /// Reads `listening URL` lines up to `ready`; the TCP and the WebSocket URL.
    async fn wait_ready(&mut self) -> Result<(TransportAddress, TransportAddress), String> {
        let deadline = Instant::now() + DEMO_PATIENCE;
        let (mut tcp, mut ws) = (None, None);
        loop {
            let line = self.next_line(deadline, "`ready`").await?;
            if line == "ready" {
                break;
            }
            let url = line
                .strip_prefix("listening ")
                .ok_or_else(|| format!("unexpected line from hello serve: {line:?}"))?;
            let address: TransportAddress = url
                .parse()
                .map_err(|error| format!("hello serve listens on {url:?}: {error}"))?;
            match address.scheme() {
                Scheme::Tcp => tcp = Some(address),
                Scheme::WebSocket => ws = Some(address),
                _ => return Err(format!("hello serve listens on {url:?}")),
            }
        }
        match (tcp, ws) {
            (Some(tcp), Some(ws)) => Ok((tcp, ws)),
            _ => Err("hello serve is ready without a tcp:// and a ws:// address".to_owned()),
        }
    }

    /// Reads `count` `recv` lines, calls 1..=count once each, all from
    /// `client`; the distinct role lists they show.
    async fn recv_lines(
        &mut self,
        client: PlatformId,
        count: u64,
    ) -> Result<BTreeSet<String>, String> {
        let deadline = Instant::now() + DEMO_PATIENCE;
        let client = client.to_string();
        let mut seen = HashSet::new();
        let mut roles = BTreeSet::new();
        while (seen.len() as u64) < count {
            let line = self.next_line(deadline, "every `recv` line").await?;
            let parsed = line.strip_prefix("recv ").and_then(|rest| {
                let (n, rest) = rest.split_once(" from ")?;
                let (from, listed) = rest.split_once(" roles=")?;
                Some((n.parse::<u64>().ok()?, from, listed))
            });
            let Some((n, from, listed)) = parsed else {
                return Err(format!("unexpected line from hello serve: {line:?}"));
            };
            if from != client || !(1..=count).contains(&n) || !seen.insert(n) {
                return Err(format!(
                    "hello serve received what this run did not send once: {line:?}"
                ));
            }
            roles.insert(listed.to_owned());
        }
        Ok(roles)
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        // An error means it has ended already; `wait` reaps it either way.
        let _ = self.child.kill();
        if let Err(error) = self.child.wait() {
            eprintln!("warning: hello serve not reaped: {error}");
        }
        for relay in self.relays.drain(..) {
            let _ = relay.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Command, UsageError> {
        parse(args.iter().map(OsString::from).collect())
    }

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn decodes_hex_keys_of_32_to_64_bytes() {
        assert_eq!(decode_hex(KEY), Some((0u8..32).collect()));
        assert_eq!(decode_hex(&"Ff".repeat(64)), Some(vec![0xff; 64]));
        assert_eq!(decode_hex(&"00".repeat(31)), None);
        assert_eq!(decode_hex(&"00".repeat(65)), None);
        assert_eq!(decode_hex(&format!("{KEY}0")), None);
        assert_eq!(decode_hex(&format!("{}zz", "00".repeat(31))), None);
        assert_eq!(decode_hex(&format!("{}é", "0".repeat(63))), None);
    }

    #[test]
    fn parses_serve_and_send() {
        let key = format!("a={KEY}");
        let Ok(Command::Serve(serve)) = parse_strs(&[
            "serve",
            "--listen",
            "tcp://127.0.0.1:0",
            "--listen=ws://127.0.0.1:0/hello",
            "--key",
            &key,
            "--password",
            "logistics=a=b",
            "--accept-unauthenticated",
        ]) else {
            panic!("serve parses");
        };
        assert_eq!(serve.listen.len(), 2);
        let Setup::Flags(security) = &serve.setup else {
            panic!("roles from flags");
        };
        assert_eq!(security.roles.len(), 2);
        assert!(security.accept_unauthenticated);

        let Ok(Command::Send(send)) = parse_strs(&[
            "send",
            "--connect",
            "ws://127.0.0.1:9/x",
            "--count",
            "5",
            "--key",
            &key,
        ]) else {
            panic!("send parses");
        };
        assert_eq!((send.count, send.window), (5, DEFAULT_WINDOW));
        assert_eq!(send.timeout, Duration::from_secs(DEFAULT_TIMEOUT_SECS));
        let Setup::Flags(security) = &send.setup else {
            panic!("roles from flags");
        };
        assert!(!security.accept_unauthenticated);
    }

    #[test]
    fn bad_usage_names_the_flag() {
        let key = format!("a={KEY}");
        for (args, flag) in [
            (vec!["serve"], "--listen"),
            (vec!["serve", "--listen", "udp://h:1"], "--listen"),
            (vec!["serve", "--listen", "mem://x"], "--listen"),
            (vec!["serve", "--listen"], "--listen"),
            (
                vec!["serve", "--listen", "tcp://h:1", "--key", "a=00"],
                "--key",
            ),
            (
                vec!["serve", "--listen", "tcp://h:1", "--key", "nokey"],
                "--key",
            ),
            (
                vec!["serve", "--listen", "tcp://h:1", "--key", "a b=00"],
                "--key",
            ),
            (
                vec!["serve", "--listen", "tcp://h:1", "--password", "a="],
                "--password",
            ),
            (
                vec![
                    "serve",
                    "--listen",
                    "tcp://h:1",
                    "--key",
                    &key,
                    "--password",
                    "a=x",
                ],
                "--password",
            ),
            (
                vec![
                    "serve",
                    "--listen",
                    "tcp://h:1",
                    "--accept-unauthenticated=yes",
                ],
                "--accept",
            ),
            (vec!["serve", "--listen", "tcp://h:1", "--bogus"], "--bogus"),
            (vec!["send", "--count", "1"], "--connect"),
            (vec!["send", "--connect", "tcp://h:1"], "--count"),
            (
                vec!["send", "--connect", "tcp://h:1", "--count", "0"],
                "--count",
            ),
            (
                vec!["send", "--connect", "tcp://h:1", "--count", "x"],
                "--count",
            ),
            (
                vec![
                    "send",
                    "--connect",
                    "tcp://h:1",
                    "--count",
                    "1",
                    "--window",
                    "0",
                ],
                "--window",
            ),
            (
                vec![
                    "send",
                    "--connect",
                    "tcp://h:1",
                    "--count",
                    "1",
                    "--timeout-secs",
                    "-1",
                ],
                "--timeout-secs",
            ),
        ] {
            match parse_strs(&args) {
                Err(UsageError(message)) => assert!(message.contains(flag), "{args:?}: {message}"),
                Ok(command) => panic!("{args:?} parsed as {command:?}"),
            }
        }
        assert!(parse_strs(&[]).is_err());
        assert!(parse_strs(&["frobnicate"]).is_err());
        assert!(matches!(parse_strs(&["--help"]), Ok(Command::Help)));
    }

    #[test]
    fn demo_takes_no_options() {
        assert!(matches!(parse_strs(&["demo"]), Ok(Command::Demo)));
        assert!(matches!(parse_strs(&["demo", "--help"]), Ok(Command::Help)));
        for args in [vec!["demo", "--count", "3"], vec!["demo", "extra"]] {
            match parse_strs(&args) {
                Err(UsageError(message)) => assert!(
                    message.contains(args[1]) && message.contains("demo"),
                    "{args:?}: {message}"
                ),
                Ok(command) => panic!("{args:?} parsed as {command:?}"),
            }
        }
    }

    #[test]
    fn demo_secrets_are_fresh_and_the_wrong_password_differs() {
        let (one, two) = (
            DemoSecrets::generate().expect("rng"),
            DemoSecrets::generate().expect("rng"),
        );
        assert_ne!(one.key.expose(), two.key.expose());
        assert_ne!(one.password, one.wrong_password);
        assert_ne!(one.password, two.password);
        assert_eq!(format!("{one:?}"), "DemoSecrets(..)");
        let security = demo_security(&one, &one.password).expect("valid roles");
        assert_eq!(role_list(&security.roles), "logistics,orders");
    }

    #[test]
    fn config_replaces_role_flags() {
        let Ok(Command::Serve(serve)) = parse_strs(&["serve", "--config", "server.toml"]) else {
            panic!("serve --config parses without --listen");
        };
        assert!(serve.listen.is_empty());
        assert!(matches!(&serve.setup, Setup::Config(path) if path.as_os_str() == "server.toml"));

        let Ok(Command::Serve(serve)) = parse_strs(&[
            "serve",
            "--config=server.toml",
            "--listen",
            "ws://127.0.0.1:0/hello",
        ]) else {
            panic!("serve --config --listen parses");
        };
        assert_eq!(serve.listen.len(), 1);

        let Ok(Command::Send(send)) = parse_strs(&[
            "send",
            "--connect",
            "tcp://127.0.0.1:9",
            "--count",
            "3",
            "--config",
            "client.toml",
        ]) else {
            panic!("send --config parses");
        };
        assert!(matches!(&send.setup, Setup::Config(path) if path.as_os_str() == "client.toml"));

        let key = format!("a={KEY}");
        for (args, flag) in [
            (vec!["serve", "--config", "f.toml", "--key", &key], "--key"),
            (vec!["serve", "--key", &key, "--config", "f.toml"], "--key"),
            (
                vec!["serve", "--config", "f.toml", "--password", "a=x"],
                "--password",
            ),
            (
                vec![
                    "serve",
                    "--accept-unauthenticated",
                    "--listen",
                    "tcp://h:1",
                    "--config=f",
                ],
                "--accept-unauthenticated",
            ),
            (
                vec![
                    "send",
                    "--connect",
                    "tcp://h:1",
                    "--count",
                    "1",
                    "--config",
                    "f",
                    "--password",
                    "a=x",
                ],
                "--password",
            ),
            (
                vec![
                    "send",
                    "--connect",
                    "tcp://h:1",
                    "--count",
                    "1",
                    "--accept-unauthenticated",
                    "--config",
                    "f",
                ],
                "--accept-unauthenticated",
            ),
        ] {
            match parse_strs(&args) {
                Err(UsageError(message)) => {
                    assert!(
                        message.contains("--config") && message.contains(flag),
                        "{args:?}: {message}"
                    );
                    assert!(!message.contains(KEY), "{message}");
                }
                Ok(command) => panic!("{args:?} parsed as {command:?}"),
            }
        }
        for args in [
            vec!["serve", "--config"],
            vec!["serve", "--config="],
            vec!["serve", "--config", "a", "--config", "b"],
            vec![
                "send",
                "--connect",
                "tcp://h:1",
                "--count",
                "1",
                "--config",
                "a",
                "--config=b",
            ],
        ] {
            match parse_strs(&args) {
                Err(UsageError(message)) => {
                    assert!(message.contains("--config"), "{args:?}: {message}")
                }
                Ok(command) => panic!("{args:?} parsed as {command:?}"),
            }
        }
    }

    #[test]
    fn usage_errors_do_not_echo_secrets() {
        let short = "sekrit".repeat(4);
        let Err(UsageError(message)) = parse_strs(&[
            "serve",
            "--listen",
            "tcp://h:1",
            "--key",
            &format!("a={short}"),
        ]) else {
            panic!("short key refused");
        };
        assert!(!message.contains(&short), "{message}");
    }
}
