//! How a run is set up: seeds, duration, clients, image profile and where the history
//! goes, from the environment.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// How a run is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    pub seed: u64,
    /// How long the nemesis runs (quiet points and the final checks come on top).
    pub duration: Duration,
    /// A quiet point after at least this much nemesis time.
    pub quiet_every: Duration,
    pub clients: u64,
    /// Package the release binary instead of the debug one.
    pub release: bool,
    /// Where the history goes.
    pub out_dir: PathBuf,
    /// Write the history even when every check passes.
    pub keep_history: bool,
}

/// Parse `90s`, `30m`, `2h`, `1500ms` or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .with_context(|| format!("duration {s:?}: expected a number and s, m, h or ms"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => bail!("duration {s:?}: unknown unit {other:?} (use s, m, h or ms)"),
    })
}

impl Settings {
    /// The runs the environment asks for: `VECSHARD_NEMESIS_SEED` (one run, else one per
    /// default seed), `VECSHARD_NEMESIS_DURATION` (else `default_duration`),
    /// `VECSHARD_NEMESIS_CLIENTS`, `VECSHARD_NEMESIS_RELEASE=1`, `VECSHARD_NEMESIS_HISTORY=always`.
    pub fn from_env(
        default_seeds: &[u64],
        default_duration: Duration,
        out_dir: PathBuf,
    ) -> Result<Vec<Settings>> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let seeds = match var("VECSHARD_NEMESIS_SEED") {
            Some(s) => vec![
                s.parse()
                    .with_context(|| format!("VECSHARD_NEMESIS_SEED={s:?}: expected an integer"))?,
            ],
            None => default_seeds.to_vec(),
        };
        let duration = match var("VECSHARD_NEMESIS_DURATION") {
            Some(d) => parse_duration(&d).context("VECSHARD_NEMESIS_DURATION")?,
            None => default_duration,
        };
        let clients = match var("VECSHARD_NEMESIS_CLIENTS") {
            Some(c) => c
                .parse()
                .with_context(|| format!("VECSHARD_NEMESIS_CLIENTS={c:?}: expected an integer"))?,
            None => 4,
        };
        let release = var("VECSHARD_NEMESIS_RELEASE").is_some_and(|v| v != "0");
        let keep_history = var("VECSHARD_NEMESIS_HISTORY").is_some_and(|v| v == "always");
        Ok(seeds
            .into_iter()
            .map(|seed| Settings {
                seed,
                duration,
                // Short runs get one quiet point halfway; long ones one every 5 minutes.
                quiet_every: (duration / 2).min(Duration::from_secs(300)),
                clients,
                release,
                out_dir: out_dir.clone(),
                keep_history,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bad_ones_are_named() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("75s").unwrap(), Duration::from_secs(75));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        let e = parse_duration("30 minutes").unwrap_err().to_string();
        assert!(e.contains("30 minutes"), "{e}");
        assert!(parse_duration("m").is_err());
    }
}
