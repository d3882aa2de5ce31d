//! A small HTTP/1.1 client for the scripted scenario: one request per
//! connection, JSON in and out, bounded response size. The scenario talks
//! to the shop exactly as the web page does.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response read.
const MAX_RESPONSE: u64 = 4 * 1024 * 1024;
const PATIENCE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Client {
    /// `host:port`
    authority: String,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Value,
}

impl Response {
    pub fn ok<T: DeserializeOwned>(self) -> Result<T, String> {
        if self.status != 200 {
            return Err(format!("HTTP {}: {}", self.status, self.body));
        }
        serde_json::from_value(self.body).map_err(|e| format!("unexpected answer: {e}"))
    }
}

impl Client {
    /// `url` as the API platform printed it: `http://host:port/`.
    pub fn new(url: &str) -> Result<Self, String> {
        let authority = url
            .strip_prefix("http://")
            .map(|rest| rest.trim_end_matches('/'))
            .filter(|rest| !rest.is_empty() && !rest.contains('/'))
            .ok_or_else(|| format!("not an http://host:port/ URL: {url}"))?;
        Ok(Self {
            authority: authority.to_owned(),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Response, String> {
        self.request("GET", path, None).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Response, String> {
        self.request("PUT", path, Some(body)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Response, String> {
        self.request("POST", path, Some(body)).await
    }

    async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Response, String> {
        let exchange = async {
            let mut stream = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| format!("cannot reach {}: {e}", self.authority))?;
            let body = body.map(Value::to_string).unwrap_or_default();
            let request = format!(
                "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                self.authority,
                body.len()
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            let mut raw = Vec::new();
            stream
                .take(MAX_RESPONSE)
                .read_to_end(&mut raw)
                .await
                .map_err(|e| format!("{method} {path}: {e}"))?;
            parse(&raw).map_err(|e| format!("{method} {path}: {e}"))
        };
        tokio::time::timeout(PATIENCE, exchange)
            .await
            .map_err(|_| format!("{method} {path}: no answer within {PATIENCE:?}"))?
    }
}

/// Status line and body of a `Connection: close` response (axum sends a
/// `content-length`; chunked bodies are not needed here).
fn parse(raw: &[u8]) -> Result<Response, String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| "headers not UTF-8")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or("no status code")?;
    let body = &raw[split + 4..];
    let body = if body.is_empty() {
        Value::Null
    } else {
        // The page itself is HTML: kept as a string.
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    };
    Ok(Response { status, body })
}
