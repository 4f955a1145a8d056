//! `vecshard collection create|list|describe|drop --router ADDR`.

use anyhow::Result;
use clap::Subcommand;
use vecshard_model::Metric;
use vecshard_model::proto::metric_to_proto;
use vecshard_proto::v1 as pb;

use super::client::{connect, status};
use super::table::Table;

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

pub async fn run(cmd: CollectionCmd) -> Result<()> {
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
        } => {
            let metric = metric_to_proto(metric);
            let req = pb::CreateCollectionRequest {
                name,
                dimension: dim,
                metric: metric as i32,
                shard_count: shards,
                storage,
                index: Some(pb::IndexParams {
                    m,
                    ef_construction,
                    ef_search,
                }),
            };
            let r = connect(&router)
                .await?
                .create_collection(req)
                .await
                .map_err(status)?;
            if let Some(s) = r.into_inner().spec {
                println!("created {}", spec_line(&s));
            }
        }
        CollectionCmd::List { router } => {
            let r = connect(&router).await?;
            let l = r
                .clone()
                .list_collections(pb::ListCollectionsRequest {})
                .await
                .map_err(status)?;
            for s in l.into_inner().collections {
                println!("{}", spec_line(&s));
            }
        }
        CollectionCmd::Describe { router, name } => {
            let req = pb::DescribeCollectionRequest { name };
            let d = connect(&router)
                .await?
                .describe_collection(req)
                .await
                .map_err(status)?
                .into_inner();
            if let Some(s) = &d.spec {
                println!("{}", spec_line(s));
            }
            let mut t = Table::new(&["SHARD", "OWNER", "EPOCH", "STATE", "POINTS"]);
            for s in d.shards {
                t.row(vec![
                    s.number.to_string(),
                    s.owner_node,
                    s.epoch.to_string(),
                    shard_state(s.state),
                    s.live_points
                        .map(|p| p.to_string())
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            print!("{t}");
        }
        CollectionCmd::Drop { router, name } => {
            let req = pb::DropCollectionRequest { name: name.clone() };
            connect(&router)
                .await?
                .drop_collection(req)
                .await
                .map_err(status)?;
            println!("dropped {name}");
        }
    }
    Ok(())
}

pub fn spec_line(s: &pb::CollectionSpec) -> String {
    let metric = pb::Metric::try_from(s.metric)
        .map(|m| {
            m.as_str_name()
                .trim_start_matches("METRIC_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let i = s.index.unwrap_or_default();
    format!(
        "{}: {}-d {metric}, {} shards, storage {}, m={} ef_construction={} ef_search={}",
        s.name,
        s.dimension,
        s.shard_count,
        s.storage,
        i.m.unwrap_or_default(),
        i.ef_construction.unwrap_or_default(),
        i.ef_search.unwrap_or_default()
    )
}

pub fn shard_state(s: i32) -> String {
    pb::ShardState::try_from(s)
        .map(|x| {
            x.as_str_name()
                .trim_start_matches("SHARD_STATE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_else(|_| "unknown".into())
}
