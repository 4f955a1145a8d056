//! Helpers shared by vecshard's tests, a dev-dependency only: polling instead of fixed
//! sleeps, free ports, a first-byte latency proxy, deterministic points and, behind
//! features, helpers for the public gRPC API (`api`) and the model's types (`model`). It
//! never depends on the engine, the node or the router, so any crate's tests can use it
//! without building the others.

use std::future::Future;
use std::time::{Duration, Instant};

#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "model")]
pub mod model;
pub mod proxy;

/// A port that is free now, outside the kernel's ephemeral range (32768–60999 on Linux) so
/// that outgoing connections of other processes do not take it before we bind it, and
/// reserved for this test process until it exits: a lock on
/// `$TMPDIR/vecshard-test-ports/PORT.lock` keeps every other test process (nextest runs
/// each test in its own) from handing out the same port while a server of this test is
/// down — a node killed and restarted on its old ports finds them still free.
pub fn free_port() -> u16 {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // The reservations: a lock lasts while its file stays open, so they live as long as
    // the process (the kernel drops them when it exits, however it exits).
    static HELD: Mutex<Vec<std::fs::File>> = Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("vecshard-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let seed = std::process::id().wrapping_mul(7919);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20_000 + (seed.wrapping_add(n.wrapping_mul(104_729)) % 12_000) as u16;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("{port}.lock")));
        // Without a usable directory ports are only checked, as before.
        let reserved = match lock {
            Ok(file) => match file.try_lock() {
                Ok(()) => Some(file),
                Err(_) => continue, // another test process holds it
            },
            Err(_) => None,
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            if let Some(file) = reserved {
                HELD.lock().unwrap_or_else(|p| p.into_inner()).push(file);
            }
            return port;
        }
    }
}

/// Poll `f` every 20 ms until it returns `Some`; fails the test naming `what` after
/// `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_every(what, timeout, Duration::from_millis(20), String::new, f).await
}

/// [`eventually`] with a polling interval, and `context()` (logs, state) appended to the
/// failure message.
pub async fn eventually_every<T, F, Fut>(
    what: &str,
    timeout: Duration,
    every: Duration,
    context: impl Fn() -> String,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= end {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                context()
            );
        }
        tokio::time::sleep(every).await;
    }
}

/// A deterministic pseudo-random vector for key `i`, components in [-0.5, 0.5).
pub fn vector(i: u64, dim: usize) -> Vec<f32> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..dim)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 100_000) as f32 / 100_000.0 - 0.5
        })
        .collect()
}

/// Squared L2 distance in f64.
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}

/// Exact top-k by L2 over the [`vector`]s of `ids`, ties by key: (id, distance).
pub fn exact<I>(query: &[f32], ids: I, dim: usize, k: usize) -> Vec<(u64, f64)>
where
    I: IntoIterator,
    I::Item: std::borrow::Borrow<u64>,
{
    let mut all: Vec<(u64, f64)> = ids
        .into_iter()
        .map(|i| {
            let i = *std::borrow::Borrow::<u64>::borrow(&i);
            (i, l2(query, &vector(i, dim)))
        })
        .collect();
    all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    all.truncate(k);
    all
}

/// Write `rows` as an `.fvecs` file (per row: the dimension as i32 LE, then the f32s LE).
pub fn write_fvecs(path: &std::path::Path, rows: impl Iterator<Item = Vec<f32>>) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(
        std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display())),
    );
    for r in rows {
        f.write_all(&(r.len() as i32).to_le_bytes()).unwrap();
        for x in r {
            f.write_all(&x.to_le_bytes()).unwrap();
        }
    }
    f.flush().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_and_distinct() {
        assert_eq!(vector(7, 8), vector(7, 8));
        assert_ne!(vector(7, 8), vector(8, 8));
        assert!(vector(3, 64).iter().all(|x| (-0.5..0.5).contains(x)));
    }

    #[test]
    fn exact_orders_by_distance_then_key() {
        let q = vector(5, 4);
        let top = exact(&q, 0..100, 4, 3);
        assert_eq!(top[0], (5, 0.0));
        assert!(top.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[tokio::test]
    async fn eventually_returns_the_first_some() {
        let mut n = 0;
        let v = eventually("n to reach 3", Duration::from_secs(5), || {
            n += 1;
            let now = n;
            async move { (now >= 3).then_some(now) }
        })
        .await;
        assert_eq!(v, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "timed out after 50ms waiting for nothing\nstate")]
    async fn eventually_fails_naming_what_and_context() {
        eventually_every(
            "nothing",
            Duration::from_millis(50),
            Duration::from_millis(10),
            || "state".to_string(),
            || async { None::<()> },
        )
        .await;
    }

    #[test]
    fn fvecs_rows_are_length_prefixed() {
        let dir = std::env::temp_dir().join(format!("vecshard-ts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.fvecs");
        write_fvecs(&path, [vec![1.0f32, 2.0], vec![3.0]].into_iter());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(bytes.len(), 4 + 8 + 4 + 4);
        assert_eq!(&bytes[..4], &2i32.to_le_bytes());
        assert_eq!(&bytes[12..16], &1i32.to_le_bytes());
        assert_eq!(&bytes[16..], &3.0f32.to_le_bytes());
    }

    #[test]
    fn free_ports_bind() {
        let p = free_port();
        assert!((20_000..32_000).contains(&p));
        std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
    }

    /// A port handed out stays reserved after its listener closed (a server killed and
    /// restarted on it): another process's `free_port` cannot take its lock — a second
    /// open file stands for that process here, as flock locks belong to the open file —
    /// and this process does not hand it out again.
    #[test]
    fn a_handed_out_port_stays_reserved() {
        let p = free_port();
        let path = std::env::temp_dir()
            .join("vecshard-test-ports")
            .join(format!("{p}.lock"));
        let other = std::fs::File::open(&path).unwrap();
        assert!(other.try_lock().is_err(), "port {p} is not reserved");
        assert!((0..50).all(|_| free_port() != p));
    }
}
