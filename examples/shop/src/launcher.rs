//! Starts the four platforms as child processes of this one (`shop platform
//! <config>` each), waits until each says `ready`, and stops them all when
//! dropped. A child's stdout is watched for its `ready` and `http` lines;
//! its stderr (the logs) goes to a file in the shop's directory. Each
//! child's stdin is a pipe from this process: if this process dies, the pipe
//! closes and the children stop too.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::client::Client;
use crate::setup::{Layout, PLATFORMS};

/// Longest wait for a platform to say `ready`.
const START_PATIENCE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub struct Shop {
    layout: Layout,
    children: HashMap<&'static str, Child>,
    /// The web page, once the API platform serves it.
    pub url: String,
    /// Relay children's stdout lines to ours (interactive mode).
    echo: bool,
}

impl Shop {
    /// Starts every platform, the API platform first.
    pub async fn start(layout: Layout, echo: bool) -> Result<Self, String> {
        let mut shop = Self {
            layout,
            children: HashMap::new(),
            url: String::new(),
            echo,
        };
        for platform in PLATFORMS {
            shop.start_one(platform).await?;
        }
        shop.serving().await?;
        Ok(shop)
    }

    /// Waits until the shop answers a catalogue request: the API platform
    /// has found the warehouse, so the first page load works.
    async fn serving(&self) -> Result<(), String> {
        let client = Client::new(&self.url)?;
        let deadline = tokio::time::Instant::now() + START_PATIENCE;
        loop {
            match client.get("/api/catalogue").await {
                Ok(response) if response.status == 200 => return Ok(()),
                _ if tokio::time::Instant::now() >= deadline => {
                    return Err(format!(
                        "the shop did not serve its catalogue within {START_PATIENCE:?}; see the logs in {}",
                        self.layout.dir.join("logs").display()
                    ));
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Starts (or restarts) one platform from its config.
    pub async fn start_one(&mut self, platform: &'static str) -> Result<(), String> {
        self.stop_one(platform).await;
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.layout.log(platform))
            .map_err(|e| format!("{}: {e}", self.layout.log(platform).display()))?;
        let mut child = Command::new(exe)
            .arg("platform")
            .arg(self.layout.config(platform))
            .arg("--exit-with-parent")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            // Its own process group: Ctrl-C in the terminal reaches only the
            // launcher, which then stops the platforms in order.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start the {platform} platform: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| format!("{platform}: no stdout"))?;
        let (lines_tx, mut lines) = mpsc::unbounded_channel();
        let echo = self.echo;
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if echo {
                    println!("[{platform}] {line}");
                }
                let _ = lines_tx.send(line);
            }
        });
        self.children.insert(platform, child);
        let ready = async {
            while let Some(line) = lines.recv().await {
                if let Some(url) = line.strip_prefix("http ") {
                    self.url = url.to_owned();
                }
                if line.starts_with("ready ") {
                    return Ok(());
                }
            }
            Err(format!(
                "the {platform} platform exited before it was ready; see {}",
                self.layout.log(platform).display()
            ))
        };
        match tokio::time::timeout(START_PATIENCE, ready).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "the {platform} platform was not ready within {START_PATIENCE:?}; see {}",
                self.layout.log(platform).display()
            )),
        }
    }

    /// Kills one platform (as a crash would: no goodbye) and reaps it.
    pub async fn stop_one(&mut self, platform: &str) {
        if let Some(mut child) = self.children.remove(platform) {
            let _ = child.kill().await;
        }
    }

    /// Whether every platform still runs; the first that exited if not.
    pub fn exited(&mut self) -> Option<String> {
        self.children.iter_mut().find_map(|(name, child)| {
            matches!(child.try_wait(), Ok(Some(_)) | Err(_)).then(|| (*name).to_owned())
        })
    }

    pub async fn stop(mut self) {
        for platform in PLATFORMS.iter().rev() {
            self.stop_one(platform).await;
        }
    }
}
