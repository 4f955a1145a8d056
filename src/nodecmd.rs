//! `vecshard node`: run a data node until SIGTERM or ctrl-c (then shut down gracefully).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

#[derive(Args)]
pub struct NodeArgs {
    /// TOML configuration file; `VECSHARD__SECTION__KEY` variables override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Prints one JSON line with the bound addresses once the node serves.
pub fn run(a: NodeArgs) -> Result<()> {
    let config = vecshard_node::load_config(a.config.as_deref())?;
    let rt = crate::runtime::server("vecshard-node")?;
    rt.block_on(vecshard_node::run_until_signal(config, |node| {
        let line = serde_json::json!({
            "node_id": node.node_id(),
            "grpc_addr": node.grpc_addr().to_string(),
            "http_addr": node.http_addr().to_string(),
        });
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }))?;
    Ok(())
}
