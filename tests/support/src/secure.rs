//! A Redis that trusts nobody by default: TLS only (certificates from a CA the test makes
//! with `openssl`), the `default` user off, one ACL user with a password.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
};

use super::{free_port, redis_server, spawn_redis};

/// The ACL user of a [`SecureRedis`].
pub const SECURE_USER: &str = "gateway";
/// Its password.
pub const SECURE_PASSWORD: &str = "a-password-only-the-gateways-know";

/// A TLS-only, ACL-protected `redis-server` owned by one test; killed when dropped.
pub struct SecureRedis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl SecureRedis {
    /// Makes a CA and a server certificate for 127.0.0.1, starts the server and waits until
    /// the ACL user can PING it over TLS.
    ///
    /// # Panics
    /// When `openssl` (Debian package `openssl`) or `redis-server` is missing, or the server
    /// does not answer within 10 s.
    pub async fn start() -> Self {
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("test-redis-tls-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("creating {}: {err}", dir.display()));
        make_certificates(&dir);
        let password = format!(">{SECURE_PASSWORD}");
        let mut command = redis_server(0, &dir);
        command
            .args(["--tls-port", &port.to_string()])
            .arg("--tls-cert-file")
            .arg(dir.join("server.crt"))
            .arg("--tls-key-file")
            .arg(dir.join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.crt"))
            .args(["--tls-auth-clients", "no"])
            .args(["--user", "default", "off"])
            .args(["--user", SECURE_USER, "on", &password, "~*", "&*", "+@all"]);
        let server = Self {
            port,
            child: spawn_redis(&mut command),
            dir,
        };
        server.wait_ready().await;
        server
    }

    /// `rediss://127.0.0.1:PORT`, without credentials.
    pub fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The CA certificate (PEM) that signed the server's.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.join("ca.crt")).unwrap_or_else(|err| panic!("reading the CA: {err}"))
    }

    /// A client of the ACL user over TLS, trusting the test's CA.
    pub fn client(&self) -> redis::Client {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
        let url = format!(
            "rediss://{SECURE_USER}:{SECURE_PASSWORD}@127.0.0.1:{}",
            self.port
        );
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(self.ca_pem()),
        };
        redis::Client::build_with_tls(url, certificates).unwrap_or_else(|err| panic!("{err}"))
    }

    async fn wait_ready(&self) {
        let what = format!("TLS redis-server on port {}", self.port);
        super::wait_for_ping(&self.client(), &what).await;
    }
}

impl Drop for SecureRedis {
    fn drop(&mut self) {
        let _already_dead = self.child.kill();
        let _reaped = self.child.wait();
        let _best_effort = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA (`ca.crt`, `ca.key`) and a server certificate for IP 127.0.0.1 (`server.crt`,
/// `server.key`) in `dir`.
fn make_certificates(dir: &Path) {
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")
        .unwrap_or_else(|err| panic!("writing san.ext: {err}"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=test-ca",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run openssl ({err}): install the Debian package `openssl`")
        });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
