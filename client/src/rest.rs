//! A router's REST API (`VECSHARD_API_KEY` as the bearer key): the operator's calls and
//! the backup endpoints go through this one client; an error answer becomes `code: message`.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The REST API of one router.
#[derive(Debug, Clone)]
pub struct Router {
    base: String,
    http: reqwest::Client,
    key: Option<String>,
}

impl Router {
    /// The router at `addr`: `host:port` (plain HTTP) or a URL.
    pub fn new(addr: &str) -> Result<Router> {
        let base = if addr.contains("://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .build()
            .context("HTTP client")?;
        Ok(Router {
            base,
            http,
            key: std::env::var("VECSHARD_API_KEY").ok(),
        })
    }

    /// GET `path` with `query`.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        let req = self.http.get(format!("{}{path}", self.base)).query(query);
        self.send(req).await
    }

    /// POST `body` to `path`.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        let req = self.http.post(format!("{}{path}", self.base)).json(&body);
        self.send(req).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<Value> {
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach the router's REST API at {} (give its HTTP address, not its gRPC one)",
                self.base
            )
        })?;
        let ok = resp.status().is_success();
        let status = resp.status();
        let v: Value = resp
            .json()
            .await
            .with_context(|| format!("the router's answer ({status}) is not JSON"))?;
        if !ok {
            bail!(
                "{}: {}",
                v["error"]["code"].as_str().unwrap_or("error"),
                v["error"]["message"].as_str().unwrap_or("")
            );
        }
        Ok(v)
    }
}
