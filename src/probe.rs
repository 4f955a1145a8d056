//! `vecshard probe URL`: GET a plain-HTTP health endpoint (`/healthz`, `/readyz`) and exit
//! non-zero unless it answers 2xx. The health check of the FROM-scratch containers, which
//! have no curl or wget (deploy/docker-compose.yml).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Args)]
pub struct ProbeArgs {
    /// The endpoint, e.g. http://localhost:7180/readyz.
    url: String,
    /// Give up after this many milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

pub fn run(a: ProbeArgs) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(a.timeout_ms))
            .build()
            .context("HTTP client")?;
        let r = client
            .get(&a.url)
            .send()
            .await
            .with_context(|| format!("GET {}", a.url))?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET {}: {status}: {}", a.url, body.trim());
        }
        println!("{}", body.trim());
        Ok(())
    })
}
