//! Running a node until the process is asked to stop (SIGTERM or ctrl-c), then shutting
//! it down gracefully. A second signal during shutdown exits at once (acknowledged
//! writes are durable, so that loses nothing either).

use crate::config::NodeConfig;
use crate::server::{NodeHandle, StartError, start};

/// Start a node, call `started` with its handle, serve until SIGTERM or ctrl-c, then
/// shut down gracefully.
pub async fn run_until_signal(
    config: NodeConfig,
    started: impl FnOnce(&NodeHandle),
) -> Result<(), StartError> {
    let node = start(config).await?;
    started(&node);
    stop_requested().await;
    tracing::info!("stopping: finishing in-flight calls and closing shards");
    tokio::select! {
        () = node.shutdown() => {}
        () = stop_requested() => {
            tracing::warn!("second stop signal: exiting without a graceful shutdown");
            std::process::exit(130);
        }
    }
    Ok(())
}

/// Resolves on SIGTERM or ctrl-c (ctrl-c only where SIGTERM cannot be listened for).
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
