//! `vecshard backup …`: cluster backups through a router's REST API. The router does the
//! work (see `vecshard_router::backup` and `docs/design/013-cluster-backups.md`); these
//! commands start a job, follow it with a progress bar, and print the outcome.

mod cmd;
mod show;

pub use cmd::{BackupCmd, run};
pub use vecshard_client::rest::Router;
