//! The demo shop: the web shop of the paper's Fig. 1 as five services on
//! four platforms, each its own OS process.
//!
//! ```text
//! shop [--dir DIR] [--http ADDRESS]   make DIR once, start all platforms, serve until Ctrl-C
//! shop --scenario [--dir DIR]         run the scripted session on a fresh shop; exit 0 if every step succeeded
//! shop platform CONFIG                run one platform from its config file (on any machine)
//! ```

#![forbid(unsafe_code)]

mod api;
mod client;
mod config;
mod http;
mod launcher;
mod logistics;
mod payments;
mod runner;
mod scenario;
mod services;
mod setup;
mod suggestions;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
Usage:
  shop [--dir DIR] [--http ADDRESS]
      Makes DIR (default target/shop) once: configs, keys, a password and
      certificates for four platforms. Starts them as child processes, prints
      the shop's URL and serves until Ctrl-C, then stops them all. The web
      page is served on ADDRESS (default 127.0.0.1:8080; port 0 picks one)
      when DIR is first made.
  shop --scenario [--dir DIR]
      The same on a fresh DIR (default: a new temporary directory, removed
      afterwards), then a scripted session, one line per step. Exits 0 only
      if every step succeeded.
  shop platform CONFIG [--exit-with-parent]
      Runs one platform from its config file until SIGINT or SIGTERM (or
      until its launcher exits, with --exit-with-parent).";

#[derive(Debug)]
enum Command {
    Serve {
        dir: PathBuf,
        http: SocketAddr,
    },
    Scenario {
        dir: Option<PathBuf>,
    },
    Platform {
        config: PathBuf,
        exit_with_parent: bool,
    },
    Help,
}

fn parse(args: Vec<String>) -> Result<Command, String> {
    let mut args = args.into_iter();
    let mut dir = None;
    let mut http = None;
    let mut scenario = false;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--help" | "-h" | "help" => return Ok(Command::Help),
            "platform" => {
                let config = args.next().ok_or("platform needs a CONFIG file")?;
                let exit_with_parent = match args.next().as_deref() {
                    None => false,
                    Some("--exit-with-parent") => true,
                    Some(other) => return Err(format!("platform: unknown option {other}")),
                };
                if let Some(extra) = args.next() {
                    return Err(format!("platform: unexpected {extra}"));
                }
                return Ok(Command::Platform {
                    config: config.into(),
                    exit_with_parent,
                });
            }
            "--scenario" => scenario = true,
            "--dir" => dir = Some(PathBuf::from(args.next().ok_or("--dir needs a directory")?)),
            "--http" => {
                let text = args.next().ok_or("--http needs an address")?;
                http = Some(text.parse().map_err(|_| {
                    format!("--http: {text:?} is not an address like 127.0.0.1:8080")
                })?);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if scenario {
        if http.is_some() {
            return Err("--scenario picks its own port; --http does not apply".to_owned());
        }
        return Ok(Command::Scenario { dir });
    }
    Ok(Command::Serve {
        dir: dir.unwrap_or_else(|| PathBuf::from("target/shop")),
        http: http.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Platforms started by the launcher log to files: no colour codes there.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let command = match parse(std::env::args().skip(1).collect()) {
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
        Command::Platform {
            config,
            exit_with_parent,
        } => runner::run(&config, exit_with_parent).await,
        Command::Serve { dir, http } => serve(dir, http).await,
        Command::Scenario { dir } => scenario(dir).await,
    }
}

async fn serve(dir: PathBuf, http: SocketAddr) -> ExitCode {
    let (layout, made) = match setup::prepare(&dir, http) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    if made {
        println!(
            "made the shop's configs, keys, password and certificates in {}",
            dir.display()
        );
    } else {
        println!(
            "using the shop in {} (delete it to start afresh)",
            dir.display()
        );
    }
    let shop = match launcher::Shop::start(layout, true).await {
        Ok(shop) => shop,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "the shop is open at {}  (logs in {}/logs; Ctrl-C stops it)",
        shop.url,
        dir.display()
    );
    let mut shop = shop;
    let stopped = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break None,
            () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {
                if let Some(platform) = shop.exited() {
                    break Some(platform);
                }
            }
        }
    };
    shop.stop().await;
    match stopped {
        None => {
            println!("stopped every platform");
            ExitCode::SUCCESS
        }
        Some(platform) => {
            eprintln!("error: the {platform} platform exited; stopped the others (see its log)");
            ExitCode::FAILURE
        }
    }
}

async fn scenario(dir: Option<PathBuf>) -> ExitCode {
    let temporary = dir.is_none();
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("jadeite-shop-scenario-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&dir);
    let (layout, _) = match setup::prepare(&dir, SocketAddr::from(([127, 0, 0, 1], 0))) {
        Ok(prepared) => prepared,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("scenario: a fresh shop in {}", dir.display());
    let outcome = match launcher::Shop::start(layout, false).await {
        Ok(mut shop) => {
            println!(
                "step  0 ok   start: api, payments, logistics and suggestions run as four processes"
            );
            let outcome = scenario::run(&mut shop).await;
            shop.stop().await;
            outcome
        }
        Err(error) => Err(error),
    };
    let code = match outcome {
        Ok(steps) => {
            println!("scenario passed: all {steps} steps succeeded");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("scenario failed: {error} (logs in {}/logs)", dir.display());
            return ExitCode::FAILURE;
        }
    };
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    code
}
