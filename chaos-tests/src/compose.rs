//! A compose project: up, container operations, down (on drop).
//!
//! The cluster is `deploy/docker-compose.yml` with `chaos-tests/compose-chaos.yml` layered
//! on top (short deadlines, small memtables, and a `storage` network that joins the nodes
//! and S3 only, so a node can be cut off from the routers while it still reaches storage).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The routers, nodes and S3 service of the compose file.
pub const ROUTERS: [&str; 3] = ["router-1", "router-2", "router-3"];
pub const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];
pub const S3: &str = "s3";

/// The project networks a container can be cut from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// Everything: routers, nodes, S3 and the test host's clients.
    Default,
    /// Nodes and S3 only.
    Storage,
}

/// A running compose project with a unique name.
pub struct Compose {
    project: String,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
    containers: Mutex<HashMap<String, String>>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// How long one docker or compose command may take before it is ended as hung (the daemon
/// has deadlocked here: `network connect` racing `run -p`).
const DOCKER_LIMIT: Duration = Duration::from_secs(180);
/// An image build includes a cargo build of the binary.
const BUILD_LIMIT: Duration = Duration::from_secs(1800);

/// Run `program args…` under coreutils `timeout`, so a command stuck in the daemon fails
/// with a reason instead of hanging the test until CI's limit.
fn run_limited(
    program: &OsStr,
    args: &[&OsStr],
    envs: &[(String, String)],
    limit: Duration,
) -> Result<String> {
    let mut cmd = Command::new("timeout");
    cmd.arg("--kill-after=10")
        .arg(format!("{}", limit.as_secs()))
        .arg(program)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)));
    let shown = || {
        let mut line = program.to_string_lossy().into_owned();
        for a in args {
            line.push(' ');
            line.push_str(&a.to_string_lossy());
        }
        line
    };
    let out = cmd.output().with_context(|| format!("run {}", shown()))?;
    if out.status.code() == Some(124) || out.status.code() == Some(137) {
        bail!(
            "`{}` did not finish within {} s (is the docker daemon stuck? `timeout 10 docker info` tells)",
            shown(),
            limit.as_secs()
        );
    }
    if !out.status.success() {
        bail!(
            "`{}` failed: {}{}",
            shown(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn docker(args: &[&str]) -> Result<String> {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_limited(OsStr::new("docker"), &args, &[], DOCKER_LIMIT)
}

/// `docker compose` (plugin) where available, else the standalone `docker-compose`: the
/// program and the arguments that come before compose's own.
fn compose_command() -> (&'static str, &'static [&'static str]) {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        ("docker", &["compose"])
    } else {
        ("docker-compose", &[])
    }
}

/// Build the images the compose file uses: the debug binary unless `release` (chaos is
/// about correctness; a release image is for long runs).
pub fn build_images(release: bool) -> Result<(String, String)> {
    let script = repo_root().join("deploy/build-image.sh");
    let args = [OsStr::new("--debug"), OsStr::new("vecshard:chaos")];
    let args = if release { &args[1..] } else { &args[..] };
    let vecshard = run_limited(script.as_os_str(), args, &[], BUILD_LIMIT)?;
    Ok((vecshard, build_s3_image()?))
}

/// Build the bundled S3 server's image (`deploy/build-s3-image.sh`).
pub fn build_s3_image() -> Result<String> {
    let script = repo_root().join("deploy/build-s3-image.sh");
    run_limited(
        script.as_os_str(),
        &[OsStr::new("vecshard-s3:chaos")],
        &[],
        BUILD_LIMIT,
    )
}

/// The bundled S3 server alone in a container, published on a free loopback port; removed
/// on drop.
pub struct S3Container {
    id: String,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl S3Container {
    /// Credentials the server is started with.
    pub const ACCESS_KEY: &'static str = "vecshard";
    pub const SECRET_KEY: &'static str = "vecshard-secret";
    /// The bucket the image ships.
    pub const BUCKET: &'static str = "vecshard";

    /// Start `image` (see [`build_s3_image`]).
    pub fn start(image: &str) -> Result<S3Container> {
        let id = docker(&[
            "run",
            "-d",
            "-p",
            "127.0.0.1::8014",
            image,
            "--host",
            "0.0.0.0",
            "--port",
            "8014",
            "--access-key",
            Self::ACCESS_KEY,
            "--secret-key",
            Self::SECRET_KEY,
            "/data",
        ])?;
        let mut container = S3Container {
            id,
            endpoint: String::new(),
        };
        let port = docker(&["port", &container.id, "8014/tcp"])?;
        let addr = port
            .lines()
            .next()
            .context("docker port printed nothing")?
            .to_string();
        container.endpoint = format!("http://{addr}");
        Ok(container)
    }
}

impl Drop for S3Container {
    fn drop(&mut self) {
        let _ = docker(&["rm", "-f", &self.id]);
    }
}

impl Compose {
    /// Build the images and start the whole cluster (S3 included) under a fresh name.
    pub fn up(name: &str, release: bool) -> Result<Compose> {
        let (image, s3_image) = build_images(release)?;
        let project = format!("vecshard-chaos-{name}-{}", std::process::id());
        let env = vec![
            ("VECSHARD_IMAGE".to_string(), image),
            ("VECSHARD_S3_IMAGE".to_string(), s3_image),
            ("ROUTER_HTTP_PORT".to_string(), "0".to_string()),
            ("ROUTER_GRPC_PORT".to_string(), "0".to_string()),
            // The bundled S3 server and its credentials, whatever the calling shell has
            // (the test suite exports the local moto endpoint's).
            ("S3_ENDPOINT".to_string(), "http://s3:8014".to_string()),
            ("AWS_ACCESS_KEY_ID".to_string(), "vecshard".to_string()),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                "vecshard-secret".to_string(),
            ),
            ("AWS_REGION".to_string(), "us-east-1".to_string()),
        ];
        let root = repo_root();
        let c = Compose {
            project,
            files: vec![
                root.join("deploy/docker-compose.yml"),
                root.join("chaos-tests/compose-chaos.yml"),
            ],
            env,
            containers: Mutex::default(),
        };
        c.compose(&["--profile", "s3", "up", "-d", "--quiet-pull"])?;
        Ok(c)
    }

    fn compose(&self, args: &[&str]) -> Result<String> {
        let (program, prefix) = compose_command();
        let mut all: Vec<&OsStr> = prefix.iter().map(OsStr::new).collect();
        all.extend([OsStr::new("-p"), OsStr::new(&self.project)]);
        for f in &self.files {
            all.extend([OsStr::new("-f"), f.as_os_str()]);
        }
        all.extend(args.iter().map(OsStr::new));
        run_limited(OsStr::new(program), &all, &self.env, DOCKER_LIMIT)
    }

    /// The container of a service (its id; naming differs between compose versions).
    pub fn container(&self, service: &str) -> Result<String> {
        let mut known = self.containers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = known.get(service) {
            return Ok(id.clone());
        }
        let id = self.compose(&["ps", "-a", "-q", service])?;
        if id.is_empty() {
            bail!(
                "compose project {} has no container for {service}",
                self.project
            );
        }
        known.insert(service.to_string(), id.clone());
        Ok(id)
    }

    fn network(&self, net: Net) -> String {
        match net {
            Net::Default => format!("{}_default", self.project),
            Net::Storage => format!("{}_storage", self.project),
        }
    }

    /// The service's IP address on the default network (reachable from the host).
    pub fn ip(&self, service: &str) -> Result<String> {
        let format = format!(
            "{{{{with index .NetworkSettings.Networks \"{}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}",
            self.network(Net::Default)
        );
        let ip = docker(&["inspect", "-f", &format, &self.container(service)?])?;
        if ip.is_empty() {
            bail!("{service} has no IP address (stopped or disconnected)");
        }
        Ok(ip)
    }

    /// SIGKILL the service's process (the container stops).
    pub fn kill(&self, service: &str) -> Result<()> {
        docker(&["kill", "--signal", "KILL", &self.container(service)?]).map(drop)
    }

    /// Start a stopped service again (same container, same data).
    pub fn start(&self, service: &str) -> Result<()> {
        docker(&["start", &self.container(service)?]).map(drop)
    }

    /// Freeze every process of the service (alive but silent, like SIGSTOP).
    pub fn pause(&self, service: &str) -> Result<()> {
        docker(&["pause", &self.container(service)?]).map(drop)
    }

    pub fn unpause(&self, service: &str) -> Result<()> {
        docker(&["unpause", &self.container(service)?]).map(drop)
    }

    /// Cut the service off `net` (it keeps running).
    pub fn disconnect(&self, service: &str, net: Net) -> Result<()> {
        let c = self.container(service)?;
        docker(&["network", "disconnect", &self.network(net), &c]).map(drop)
    }

    /// Reconnect it to `net` under its service name.
    pub fn connect(&self, service: &str, net: Net) -> Result<()> {
        let c = self.container(service)?;
        docker(&[
            "network",
            "connect",
            "--alias",
            service,
            &self.network(net),
            &c,
        ])
        .map(drop)
    }

    /// Delete a local collection's copies and replica records from a stopped node's data
    /// volume (`<data_dir>/<collection>-<incarnation>/`, as on a replaced disk), through
    /// the volume's directory on this host (the harness runs as root next to the docker
    /// daemon; elsewhere this fails and the fault is recorded as not applied).
    pub fn wipe_local_collection(&self, service: &str, collection: &str) -> Result<()> {
        let format =
            "{{range .Mounts}}{{if eq .Destination \"/data/node\"}}{{.Source}}{{end}}{{end}}";
        let volume = docker(&["inspect", "-f", format, &self.container(service)?])?;
        if volume.is_empty() {
            bail!("{service} has no /data/node volume");
        }
        let entries = std::fs::read_dir(&volume)
            .with_context(|| format!("read {service}'s data volume at {volume}"))?;
        let mut wiped = 0;
        for e in entries {
            let e = e.with_context(|| format!("read {volume}"))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name == collection
                || name
                    .strip_prefix(collection)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()));
            if ours {
                std::fs::remove_dir_all(e.path())
                    .with_context(|| format!("delete {}", e.path().display()))?;
                wiped += 1;
            }
        }
        if wiped == 0 {
            bail!("{service} holds no copy of {collection} under {volume}");
        }
        Ok(())
    }

    /// Restart every service (SIGTERM, then start).
    pub fn restart_all(&self) -> Result<()> {
        self.compose(&["restart", "-t", "10"]).map(drop)
    }

    /// `down` (containers and networks are removed; the named volumes stay), then `up`:
    /// new containers on the same volumes, as an operator's `docker compose down && up`.
    pub fn down_up(&self) -> Result<()> {
        self.compose(&["--profile", "s3", "down", "-t", "10"])?;
        self.containers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.compose(&["--profile", "s3", "up", "-d", "--quiet-pull"])
            .map(drop)
    }

    /// SIGKILL every router and node at once, then start them all.
    pub fn crash_all(&self) -> Result<()> {
        let all: Vec<String> = ROUTERS
            .iter()
            .chain(&NODES)
            .map(|s| self.container(s))
            .collect::<Result<_>>()?;
        let mut kill = vec!["kill", "--signal", "KILL"];
        kill.extend(all.iter().map(String::as_str));
        docker(&kill)?;
        let mut start = vec!["start"];
        start.extend(all.iter().map(String::as_str));
        docker(&start).map(drop)
    }

    /// The whole logs of every service, with timestamps.
    pub fn logs_all(&self) -> String {
        self.compose(&["logs", "--no-color", "--timestamps"])
            .unwrap_or_else(|e| e.to_string())
    }

    /// Copy `path` out of the service's container (running or not) to `dest`.
    pub fn copy_out(&self, service: &str, path: &str, dest: &Path) -> Result<()> {
        let from = format!("{}:{path}", self.container(service)?);
        let args = [OsStr::new("cp"), OsStr::new(&from), dest.as_os_str()];
        run_limited(OsStr::new("docker"), &args, &[], DOCKER_LIMIT).map(drop)
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        // Paused containers do not stop; thaw everything first.
        for svc in ROUTERS.iter().chain(&NODES).chain(&[S3]) {
            if let Ok(c) = self.container(svc) {
                let _ = docker(&["unpause", &c]);
            }
        }
        let _ = self.compose(&["--profile", "s3", "down", "-v", "-t", "1"]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hung_command_is_ended_and_named() {
        let args = [OsStr::new("30")];
        let e = run_limited(OsStr::new("sleep"), &args, &[], Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`sleep 30` did not finish within 1 s"), "{e}");
        let args = [OsStr::new("-c"), OsStr::new("echo why >&2; exit 3")];
        let e = run_limited(OsStr::new("sh"), &args, &[], Duration::from_secs(10))
            .unwrap_err()
            .to_string();
        assert!(e.contains("failed: why"), "{e}");
        let env = [("VECSHARD_T".to_string(), "v".to_string())];
        let args = [OsStr::new("-c"), OsStr::new("echo $VECSHARD_T")];
        let out = run_limited(OsStr::new("sh"), &args, &env, Duration::from_secs(10));
        assert_eq!(out.unwrap(), "v");
    }
}
