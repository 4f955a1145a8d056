//! `vecshard router --config FILE`: run one router until ctrl-c or SIGTERM.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct RouterArgs {
    /// TOML configuration (a `[router]` table); `VECSHARD__ROUTER__<KEY>` variables
    /// override it. Without a file: the defaults.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

pub fn run(a: RouterArgs) -> Result<()> {
    let cfg = vecshard_router::load_config(a.config.as_deref())?;
    let rt = crate::runtime::server("vecshard-router")?;
    rt.block_on(async {
        let router = vecshard_router::start(cfg).await?;
        // One JSON line with the bound addresses (like `vecshard node`), for scripts.
        let line = serde_json::json!({
            "router_id": router.id(),
            "grpc_addr": router.grpc_addr().to_string(),
            "http_addr": router.http_addr().to_string(),
            "internal_addr": router.internal_addr().to_string(),
        });
        println!("{line}");
        vecshard_node::stop_requested().await;
        eprintln!("shutting down");
        router.shutdown().await;
        Ok(())
    })
}
