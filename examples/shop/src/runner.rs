//! `shop platform <config>`: one shop platform in this process, started
//! from its config file, until SIGINT or SIGTERM (or, when a launcher
//! started it, until the launcher goes away).
//!
//! Prints `ready <name>` once its components run, and for the API platform
//! `http http://<address>/` once the web page is served: the launcher and
//! scripts wait for these lines.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use jadeite::service::ServiceDispatch;
use jadeite::{Component, ComponentHandle, Platform, Scope};
use jadeite_tcp::TcpTransport;
use jadeite_websocket::WebSocketTransport;

use crate::api::{OrderStore, Shopfront};
use crate::config::{ServiceKind, ShopConfig};
use crate::logistics::{Depot, Dispatch};
use crate::payments::Till;
use crate::services::{
    IntrusionServer, PaymentServer, ShippingServer, SuggestionServer, UserApiClient, UserApiServer,
    WarehouseServer,
};
use crate::suggestions::{Advisor, Burglar};

fn say(line: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{line}");
    let _ = stdout.flush();
}

pub async fn run(config: &Path, exit_with_parent: bool) -> ExitCode {
    let shop = match ShopConfig::load(config) {
        Ok(shop) => shop,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(2);
        }
    };
    let platform = match shop
        .platform
        // Services only: raw application messages are dropped on arrival.
        .application_messages(false)
        .transport(Arc::new(TcpTransport::new()))
        .transport(Arc::new(WebSocketTransport::new()))
        .start()
        .await
    {
        Ok(platform) => platform,
        Err(error) => {
            eprintln!(
                "error: {}: cannot start the platform: {error}",
                config.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut components = Vec::new();
    for kind in &shop.services {
        let started = match kind {
            ServiceKind::Warehouse => {
                provide::<_, WarehouseServer>(&platform, Depot::default(), "warehouse").await
            }
            ServiceKind::Shipping => {
                provide::<_, ShippingServer>(&platform, Dispatch::default(), "shipping").await
            }
            ServiceKind::Payment => {
                provide::<_, PaymentServer>(&platform, Till::default(), "payment").await
            }
            ServiceKind::Suggestion => {
                provide::<_, SuggestionServer>(&platform, Advisor::default(), "suggestion").await
            }
            ServiceKind::Intrusion => {
                provide::<_, IntrusionServer>(&platform, Burglar::default(), "intrusion").await
            }
            ServiceKind::UserApi => {
                let Some(orders) = &shop.orders else {
                    return ExitCode::from(2);
                };
                match OrderStore::open(orders) {
                    Ok(store) => {
                        provide::<_, UserApiServer>(&platform, Shopfront::new(store), "user-api")
                            .await
                    }
                    Err(error) => Err(error),
                }
            }
        };
        match started {
            Ok(handle) => components.push(handle),
            Err(error) => {
                eprintln!("error: {error}");
                platform.shutdown();
                return ExitCode::FAILURE;
            }
        }
    }
    let mut http = None;
    if let Some(address) = shop.http {
        let api = match platform.find::<UserApiClient>(Scope::Local).await {
            Ok(api) => api,
            Err(error) => {
                eprintln!("error: the user API did not start: {error}");
                platform.shutdown();
                return ExitCode::FAILURE;
            }
        };
        match crate::http::serve(address, api).await {
            Ok((bound, task)) => {
                http = Some(task);
                say(format_args!("http http://{bound}/"));
            }
            Err(error) => {
                eprintln!("error: cannot serve HTTP on {address}: {error}");
                platform.shutdown();
                return ExitCode::FAILURE;
            }
        }
    }
    say(format_args!("ready {}", platform.name()));
    wait_for_stop(exit_with_parent).await;
    tracing::info!(platform = platform.name(), "stopping");
    if let Some(task) = http {
        task.abort();
    }
    for component in components {
        component.kill().await;
    }
    platform.shutdown();
    ExitCode::SUCCESS
}

/// Starts `component` under `name`, providing service `S`.
async fn provide<C: Component, S: ServiceDispatch<C>>(
    platform: &Platform,
    component: C,
    name: &str,
) -> Result<ComponentHandle, String> {
    platform
        .spawn(component)
        .name(name)
        .provide::<S>()
        .start()
        .await
        .map_err(|error| error.to_string())
}

/// SIGINT, SIGTERM, or (with `exit_with_parent`) the end of stdin: the
/// launcher holds the other end of that pipe, so it closes when the launcher
/// exits in any way, a crash included.
async fn wait_for_stop(exit_with_parent: bool) {
    use tokio::io::AsyncReadExt;
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut interrupt)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        eprintln!("error: cannot install signal handlers");
        return;
    };
    let parent = async {
        if !exit_with_parent {
            return std::future::pending().await;
        }
        let mut stdin = tokio::io::stdin();
        let mut buffer = [0u8; 64];
        while let Ok(n) = stdin.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
        () = parent => {}
    }
}
