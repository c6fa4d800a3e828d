//! nginx from the shipped `deploy/nginx.conf.template`, rendered as `deploy/cluster.sh` renders
//! it, run in front of gateway processes. Shared by the tests that need it (`mod nginx_support;`
//! next to `mod support;`).
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

use crate::support::{ChildGateway, TIMEOUT, becomes_healthy, cluster_info, with_flag};

/// Gateway processes started with `args`, one per id in `ids` (`--instance-id`, nginx's
/// address trusted for `X-Forwarded-For`), once each sees all of them, and the shipped nginx in
/// front of them.
pub async fn gateways_behind_nginx(args: &[String], ids: &[&str]) -> (Vec<ChildGateway>, Nginx) {
    let args = with_flag(args.to_vec(), "--trusted-proxies", "127.0.0.1");
    let mut gateways = Vec::new();
    for id in ids {
        gateways.push(ChildGateway::start(&with_flag(args.clone(), "--instance-id", id)).await);
    }
    for gateway in &gateways {
        let all_seen = test_support::eventually_async(TIMEOUT, || async {
            cluster_info(gateway.url()).await["servers"] == ids.len()
        })
        .await;
        assert!(
            all_seen,
            "{} does not see {} servers",
            gateway.url(),
            ids.len()
        );
    }
    let ports: Vec<u16> = gateways.iter().map(|g| port_of(g.url())).collect();
    let nginx = Nginx::start(nginx_binary(), &ports).await;
    (gateways, nginx)
}

/// The deployment directory of the repository.
pub fn deploy_dir() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy"))
        .canonicalize()
        .expect("the deploy directory")
}

/// The nginx binary (in /usr/sbin, which a user's PATH may lack).
pub fn nginx_binary() -> PathBuf {
    let in_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    in_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("nginx not found: install the Debian package `nginx` (apt-get install nginx)")
        })
}

/// Renders `deploy/nginx.conf.template` as `deploy/cluster.sh` does.
pub fn render_config(run_dir: &Path, port: u16, upstream_ports: &[u16]) -> String {
    let deploy = deploy_dir();
    let template = std::fs::read_to_string(deploy.join("nginx.conf.template"))
        .expect("reading deploy/nginx.conf.template");
    let upstreams = upstream_ports
        .iter()
        .map(|port| format!("        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;"))
        .collect::<Vec<_>>()
        .join("\n");
    let rendered = template
        .replace("@RUN_DIR@", &run_dir.display().to_string())
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace(
            "@PROXY_CONF@",
            &deploy.join("nginx-proxy.conf").display().to_string(),
        )
        .replace("@UPSTREAMS@", &upstreams);
    assert!(
        !rendered.contains('@'),
        "a placeholder of the template was not rendered:\n{rendered}"
    );
    rendered
}

/// nginx run from the shipped template in a run directory of its own (it daemonizes, as
/// configured); stopped when dropped.
pub struct Nginx {
    binary: PathBuf,
    run_dir: PathBuf,
    port: u16,
    url: String,
}

impl Nginx {
    /// Starts nginx on a free loopback port in front of `upstream_ports`.
    pub async fn start(binary: PathBuf, upstream_ports: &[u16]) -> Self {
        Self::start_listening(binary, upstream_ports, &[]).await
    }

    /// Like [`Nginx::start`], also listening on each of `extra` addresses (same port): the
    /// host ends of a test's own network namespaces.
    pub async fn start_listening(binary: PathBuf, upstream_ports: &[u16], extra: &[&str]) -> Self {
        let port = test_support::free_port();
        let run_dir =
            std::env::temp_dir().join(format!("test-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(run_dir.join("nginx-tmp")).expect("creating the nginx run dir");
        let loopback = format!("listen 127.0.0.1:{port};");
        let rendered = render_config(&run_dir, port, upstream_ports);
        assert!(
            rendered.contains(&loopback),
            "no `{loopback}` in:\n{rendered}"
        );
        let listens = std::iter::once(loopback.clone())
            .chain(extra.iter().map(|addr| format!("listen {addr}:{port};")))
            .collect::<Vec<_>>()
            .join("\n        ");
        std::fs::write(
            run_dir.join("nginx.conf"),
            rendered.replace(&loopback, &listens),
        )
        .expect("writing nginx.conf");
        let nginx = Self {
            binary,
            run_dir,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        let output = nginx.command().output().unwrap_or_else(|err| {
            panic!("cannot run nginx ({err}): install the Debian package `nginx`")
        });
        assert!(
            output.status.success(),
            "nginx did not start: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            nginx.error_log()
        );
        assert!(
            becomes_healthy(&nginx.url).await,
            "nginx does not proxy /healthz: {}",
            nginx.error_log()
        );
        nginx
    }

    /// `nginx -p RUN -c RUN/nginx.conf -e RUN/nginx-error.log`, as deploy/cluster.sh runs it.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .arg("-p")
            .arg(&self.run_dir)
            .arg("-c")
            .arg(self.run_dir.join("nginx.conf"))
            .arg("-e")
            .arg(self.run_dir.join("nginx-error.log"))
            .stdin(Stdio::null());
        command
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.run_dir.join("nginx-error.log")).unwrap_or_default()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port nginx listens on, on every address.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let pid_file = self.run_dir.join("nginx.pid");
        let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let _best_effort = self.command().args(["-s", "stop"]).output();
        // nginx removes its pid file once the master has exited; kill it if it lingers.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while pid_file.exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = pid.trim();
        if pid_file.exists() && !pid.is_empty() {
            let _best_effort = Command::new("kill").args(["-KILL", pid]).status();
        }
        let _best_effort = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// The port of a `http://host:port` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url}"))
}
