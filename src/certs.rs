//! `vecshard certs generate`: a CA plus a certificate per router and node, for clusters
//! that have no PKI of their own.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use vecshard_security::generate::{Plan, generate};

#[derive(Subcommand)]
pub enum CertsCmd {
    /// Write ca.pem/ca.key, router-<id>.pem/.key and node-<n>.pem/.key into --out.
    Generate(GenerateArgs),
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Directory to write into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Host names and IP addresses every certificate names, comma-separated (each
    /// member's own name, localhost and 127.0.0.1 are always included).
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Routers: ids 1..=N (`vecshard://router/<id>`, file router-<id>.pem).
    #[arg(long, default_value_t = 1)]
    pub routers: u32,
    /// Nodes: ids node-1..node-M (`vecshard://node/node-<n>`, file node-<n>.pem).
    #[arg(long, default_value_t = 1)]
    pub nodes: u32,
}

pub fn run(cmd: CertsCmd) -> Result<()> {
    let CertsCmd::Generate(a) = cmd;
    if a.routers == 0 {
        bail!("--routers must be at least 1");
    }
    let plan = Plan {
        hosts: a.hosts.into_iter().filter(|h| !h.is_empty()).collect(),
        routers: (1..=a.routers).map(|i| i.to_string()).collect(),
        nodes: (1..=a.nodes).map(|i| format!("node-{i}")).collect(),
    };
    let w = generate(&a.out, &plan).context("generate certificates")?;
    println!(
        "CA          {}  (key {}: keep it private)",
        w.ca.display(),
        w.ca_key.display()
    );
    for m in &w.members {
        println!(
            "{:<11} {}  {}",
            m.identity.to_string(),
            m.cert.display(),
            m.key.display()
        );
    }
    Ok(())
}
