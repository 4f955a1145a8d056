//! A compose project: up, container operations, down (on drop).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// A running compose project with a unique name.
pub struct Compose {
    project: String,
    file: PathBuf,
    env: Vec<(String, String)>,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `docker compose` (plugin) where available, else the standalone `docker-compose`.
fn compose_command() -> Command {
    let plugin = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if plugin {
        let mut c = Command::new("docker");
        c.arg("compose");
        c
    } else {
        Command::new("docker-compose")
    }
}

/// Build the images the compose file uses (the debug binary: chaos is about correctness).
pub fn build_images() -> Result<(String, String)> {
    let root = repo_root();
    let vecshard =
        run(Command::new(root.join("deploy/build-image.sh")).args(["--debug", "vecshard:chaos"]))?;
    let s3 = run(Command::new(root.join("deploy/build-s3-image.sh")).arg("vecshard-s3:chaos"))?;
    Ok((vecshard, s3))
}

impl Compose {
    /// Build the images and start the whole cluster (S3 included) under a fresh name.
    pub fn up(name: &str) -> Result<Compose> {
        let (image, s3_image) = build_images()?;
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
        let c = Compose {
            project,
            file: repo_root().join("deploy/docker-compose.yml"),
            env,
        };
        c.compose(&["--profile", "s3", "up", "-d", "--quiet-pull"])?;
        Ok(c)
    }

    fn compose(&self, args: &[&str]) -> Result<String> {
        let mut cmd = compose_command();
        cmd.args(["-p", &self.project, "-f"])
            .arg(&self.file)
            .args(args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        run(&mut cmd)
    }

    /// The container of a service (its id; naming differs between compose versions).
    pub fn container(&self, service: &str) -> String {
        self.compose(&["ps", "-a", "-q", service])
            .unwrap_or_default()
    }

    /// The service's IP address on the project network (reachable from the host).
    pub fn ip(&self, service: &str) -> Result<String> {
        let ip = run(Command::new("docker").args([
            "inspect",
            "-f",
            "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
            &self.container(service),
        ]))?;
        if ip.is_empty() {
            bail!("{service} has no IP address (stopped or disconnected)");
        }
        Ok(ip)
    }

    /// SIGKILL the service's process (the container stops).
    pub fn kill(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args(["kill", "--signal", "KILL", &self.container(service)]))
            .map(drop)
    }

    /// Start a stopped service again (same container, same data).
    pub fn start(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args(["start", &self.container(service)])).map(drop)
    }

    /// Freeze every process of the service (alive but silent, like SIGSTOP).
    pub fn pause(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args(["pause", &self.container(service)])).map(drop)
    }

    pub fn unpause(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args(["unpause", &self.container(service)])).map(drop)
    }

    fn network(&self) -> String {
        format!("{}_default", self.project)
    }

    /// Cut the service off the network (it keeps running).
    pub fn disconnect(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args([
            "network",
            "disconnect",
            &self.network(),
            &self.container(service),
        ]))
        .map(drop)
    }

    /// Reconnect it under its service name.
    pub fn connect(&self, service: &str) -> Result<()> {
        run(Command::new("docker").args([
            "network",
            "connect",
            "--alias",
            service,
            &self.network(),
            &self.container(service),
        ]))
        .map(drop)
    }

    /// Restart every service (SIGTERM, then start).
    pub fn restart_all(&self) -> Result<()> {
        self.compose(&["restart", "-t", "10"]).map(drop)
    }

    /// The logs of every service (for failure messages).
    pub fn logs(&self) -> String {
        self.compose(&["logs", "--no-color", "--tail", "80"])
            .unwrap_or_else(|e| e.to_string())
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
        let _ = self.compose(&["--profile", "s3", "down", "-v", "-t", "1"]);
    }
}
