//! `vecshard collection create|list|describe|drop --router ADDR`.

use anyhow::Result;
use clap::Subcommand;
use vecshard_client::collections::{self, NewCollection};
use vecshard_client::{Connector, text};
use vecshard_model::Metric;

#[derive(Subcommand)]
pub enum CollectionCmd {
    /// Create a collection and place its shards on the live nodes.
    Create {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Name: letters, digits, `_` and `-`.
        name: String,
        /// Vector dimension.
        #[arg(long)]
        dim: u32,
        /// Distance metric: l2, cosine or dot.
        #[arg(long, default_value = "l2")]
        metric: Metric,
        /// Number of shards (0: the cluster's default).
        #[arg(long, default_value_t = 0)]
        shards: u32,
        /// `local`, or an object-store URL such as s3://bucket/prefix under one of the
        /// cluster's allowed prefixes (router.allowed_storage).
        #[arg(long, default_value = "local")]
        storage: String,
        /// Graph degree.
        #[arg(long)]
        m: Option<u32>,
        /// Build-time search width.
        #[arg(long)]
        ef_construction: Option<u32>,
        /// Default query-time search width.
        #[arg(long)]
        ef_search: Option<u32>,
        /// Copies of every shard, each on its own node (1 to 5; local storage only).
        #[arg(long, default_value_t = 1)]
        replication_factor: u32,
        /// When a write to a replicated collection is acknowledged: majority or all (of
        /// the in-sync replicas).
        #[arg(long, default_value = "majority")]
        write_ack: String,
    },
    /// List the collections.
    List {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
    },
    /// A collection's settings and shards.
    Describe {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Name.
        name: String,
    },
    /// Drop a collection and delete its data.
    Drop {
        /// A router's gRPC address.
        #[arg(long)]
        router: String,
        /// Name.
        name: String,
    },
}

pub async fn run(cmd: CollectionCmd, connector: &Connector) -> Result<()> {
    match cmd {
        CollectionCmd::Create {
            router,
            name,
            dim,
            metric,
            shards,
            storage,
            m,
            ef_construction,
            ef_search,
            replication_factor,
            write_ack,
        } => {
            let new = NewCollection {
                name,
                dimension: dim,
                metric,
                shards,
                storage,
                m,
                ef_construction,
                ef_search,
                replication_factor,
                write_ack,
            };
            let spec = collections::create(&mut connector.connect(&router).await?, new).await?;
            if let Some(s) = spec {
                println!("created {}", text::spec_line(&s));
            }
        }
        CollectionCmd::List { router } => {
            for s in collections::list(&mut connector.connect(&router).await?).await? {
                println!("{}", text::spec_line(&s));
            }
        }
        CollectionCmd::Describe { router, name } => {
            let d = collections::describe(&mut connector.connect(&router).await?, &name).await?;
            print!("{}", text::describe(&d));
        }
        CollectionCmd::Drop { router, name } => {
            collections::drop(&mut connector.connect(&router).await?, &name).await?;
            println!("dropped {name}");
        }
    }
    Ok(())
}
