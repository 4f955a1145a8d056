//! The actix system: it runs on its own thread (actix wants a `System` of its own; the
//! node's gRPC and HTTP servers run on the tokio runtime). Every shard actor gets its
//! own `Arbiter` (an OS thread), so a shard blocked in its engine delays no other shard.

use std::sync::Arc;

use actix::{Actor, Addr, Arbiter, System};
use tokio::sync::{mpsc, oneshot};

use crate::shard_actor::ShardActor;

type Made = std::io::Result<(Addr<ShardActor>, Arbiter)>;

struct Spawn {
    make: Box<dyn FnOnce() -> ShardActor + Send>,
    mailbox: usize,
    reply: oneshot::Sender<Made>,
}

/// A handle to the actix system thread.
#[derive(Debug)]
pub struct ActorSystem {
    tx: parking_lot::Mutex<Option<mpsc::Sender<Spawn>>>,
    thread: parking_lot::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl ActorSystem {
    /// Start the actix system on a new thread.
    pub fn start() -> std::io::Result<Arc<ActorSystem>> {
        let (tx, mut rx) = mpsc::channel::<Spawn>(64);
        let thread = std::thread::Builder::new()
            .name("vecshard-actix".into())
            .spawn(move || {
                let system = System::new();
                system.block_on(async move {
                    while let Some(cmd) = rx.recv().await {
                        let _ = cmd.reply.send(spawn_actor(cmd.make, cmd.mailbox));
                    }
                });
                System::current().stop();
            })?;
        Ok(Arc::new(ActorSystem {
            tx: parking_lot::Mutex::new(Some(tx)),
            thread: parking_lot::Mutex::new(Some(thread)),
        }))
    }

    /// Start a shard actor on an arbiter of its own, with a mailbox of `mailbox`
    /// messages.
    pub async fn spawn(
        &self,
        mailbox: usize,
        make: impl FnOnce() -> ShardActor + Send + 'static,
    ) -> std::io::Result<(Addr<ShardActor>, Arbiter)> {
        let gone = || std::io::Error::other("the actor system has stopped");
        let tx = self.tx.lock().clone().ok_or_else(gone)?;
        let (reply, rx) = oneshot::channel();
        tx.send(Spawn {
            make: Box::new(make),
            mailbox,
            reply,
        })
        .await
        .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }

    /// Stop the system thread and wait for it (blocking; shard arbiters are stopped by
    /// their owners before).
    pub fn stop(&self) {
        self.tx.lock().take();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

fn spawn_actor(make: Box<dyn FnOnce() -> ShardActor + Send>, mailbox: usize) -> Made {
    let arbiter = Arbiter::try_new()?;
    let addr = ShardActor::start_in_arbiter(&arbiter.handle(), move |ctx| {
        ctx.set_mailbox_capacity(mailbox);
        make()
    });
    Ok((addr, arbiter))
}
