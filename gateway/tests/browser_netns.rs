//! Browsers with addresses of their own behind the shipped nginx. On one machine every client
//! connects from 127.0.0.1, and nginx hashes by client address (`hash $remote_addr
//! consistent`), so every page would land on one instance. Here each chat page runs in headless
//! Debian `chromium` (playwright-core, `tests/browser/netns_page.mjs`) inside a network
//! namespace of this test's own, joined to the host by a veth pair (10.213.N.0/30: host side
//! .1, namespace side .2). nginx (`deploy/nginx.conf.template`) listens on loopback and on the
//! host side of every pair, in front of three clustered gateway processes that trust its
//! `X-Forwarded-For` from 127.0.0.1. Two namespaces that nginx sends to different instances are
//! picked (from a bounded number of candidates, probed through `/healthz`); Alice's page
//! in one and Bob's in the other log in, show different instances, join one room, and each
//! sees both messages. Namespaces and veths are deleted when the test ends (even on a panic),
//! and stale ones of earlier runs at its start.
//!
//! Needs root (`ip netns add`) and the Debian packages `iproute2`, `curl`, `chromium`,
//! `nginx`, `redis-server`, `nodejs` and `npm`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod nginx_support;
mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command as StdCommand, Stdio},
    time::Duration,
};

use nginx_support::{Nginx, nginx_binary, port_of};
use serde_json::Value;
use support::{ChildGateway, browser_ready, clustered_args, password, with_flag};
use test_support::RedisServer;
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

const INSTANCES: [&str; 3] = ["gw-a", "gw-b", "gw-c"];
/// Candidate namespaces: two that nginx sends to different instances are wanted; with three
/// instances, all of them hashing to one is unlikely (about 3 in 3^8).
const CANDIDATES: u8 = 8;
/// The prefix of this test's namespaces (`gwt-<pid>-<i>`) and host-side veths (`gwt<pid>h<i>`).
const PREFIX: &str = "gwt";
/// How long one step of a page may take (the script's own waits are shorter).
const STEP: Duration = Duration::from_secs(75);

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `ip ARGS`; its stdout, or a panic with its stderr.
fn ip(args: &[&str]) -> String {
    let output = StdCommand::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run ip ({err}): install the Debian package `iproute2`")
        });
    assert!(
        output.status.success(),
        "ip {} failed (root is required): {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `ip ARGS`, its failure ignored (cleanup).
fn ip_best_effort(args: &[&str]) {
    let _best_effort = StdCommand::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The pid in a name `gwt-<pid>-<i>` or `gwt<pid>h<i>`, if it is one of this test's.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let after = &rest[digits.len()..];
    (after.starts_with("-") || after.starts_with('h'))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Deletes the namespaces and host-side veths of earlier runs whose process is gone.
fn delete_stale() {
    let stale = |name: &str| {
        owner_pid(name).is_some_and(|pid| {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        })
    };
    for line in ip(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        if stale(name) {
            println!("deleting stale namespace {name}");
            ip_best_effort(&["netns", "del", name]);
        }
    }
    for line in ip(&["-o", "link", "show"]).lines() {
        // "5: gwt123h0@if4: <...>"
        let name = line
            .split(':')
            .nth(1)
            .map(|name| name.trim().split('@').next().unwrap_or_default())
            .unwrap_or_default();
        if stale(name) {
            println!("deleting stale veth {name}");
            ip_best_effort(&["link", "del", name]);
        }
    }
}

/// One network namespace of this test, joined to the host by a veth pair.
struct Netns {
    name: String,
    host_veth: String,
    /// The host side of the pair: nginx listens here.
    host_ip: String,
    /// The namespace side: the source address nginx sees.
    ns_ip: String,
}

/// This test's namespaces; deleted (with their veths) when dropped, a panic included.
#[derive(Default)]
struct Namespaces(Vec<Netns>);

impl Namespaces {
    /// Creates namespace `index` with 10.213.`subnet`.0/30 on its veth pair.
    fn add(&mut self, index: u8, subnet: u8) {
        let pid = std::process::id();
        let netns = Netns {
            name: format!("{PREFIX}-{pid}-{index}"),
            host_veth: format!("{PREFIX}{pid}h{index}"),
            host_ip: format!("10.213.{subnet}.1"),
            ns_ip: format!("10.213.{subnet}.2"),
        };
        let ns_veth = format!("{PREFIX}{pid}n{index}");
        ip(&["netns", "add", &netns.name]);
        // Owned from here on: deleted on drop even if the rest fails.
        self.0.push(netns);
        let netns = self.0.last().unwrap();
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        ip(&[
            "link",
            "add",
            &netns.host_veth,
            "type",
            "veth",
            "peer",
            "name",
            &ns_veth,
            "netns",
            &netns.name,
        ]);
        ip(&[
            "addr",
            "add",
            &format!("{}/30", netns.host_ip),
            "dev",
            &netns.host_veth,
        ]);
        ip(&["link", "set", &netns.host_veth, "up"]);
        in_ns(&["link", "set", "lo", "up"]);
        in_ns(&[
            "addr",
            "add",
            &format!("{}/30", netns.ns_ip),
            "dev",
            &ns_veth,
        ]);
        in_ns(&["link", "set", &ns_veth, "up"]);
        in_ns(&["route", "add", "default", "via", &netns.host_ip]);
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for netns in &self.0 {
            // Deleting the namespace deletes its end of the pair, and so the pair.
            ip_best_effort(&["netns", "del", &netns.name]);
            ip_best_effort(&["link", "del", &netns.host_veth]);
        }
    }
}

/// `GET url/healthz` from inside namespace `ns` (curl): the instance that answered, as its
/// `x-gateway-instance` header names it (`/api/cluster` is not behind nginx).
async fn probe_instance(ns: &str, url: &str) -> Option<String> {
    let output = Command::new("ip")
        .args(["netns", "exec", ns, "curl", "-sS", "-i", "--max-time", "5"])
        .arg(format!("{url}/healthz"))
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap_or_else(|err| panic!("cannot run ip netns exec curl ({err})"));
    if !output.status.success() {
        println!(
            "probe from {ns} to {url} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        return None;
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-gateway-instance")
                .then(|| value.trim().to_owned())
        })
}

/// One page's script, run inside its namespace.
struct Page {
    user: &'static str,
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Page {
    #[allow(clippy::too_many_arguments)]
    fn spawn(
        ns: &str,
        url: &str,
        user: &'static str,
        from: &str,
        room: &str,
        text: &str,
        expect: &str,
        artifacts: &Path,
    ) -> Self {
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns, "node", "netns_page.mjs"])
            .args(["--url", url, "--user", user, "--from", from, "--room", room])
            .arg(format!("--password={}", password(user)))
            .arg(format!("--text={text}"))
            .arg(format!("--expect-text={expect}"))
            .arg("--artifacts")
            .arg(artifacts)
            .args(["--timeout-ms", "20000"])
            .current_dir(manifest_dir().join("tests/browser"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| panic!("cannot run ip netns exec node ({err})"));
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Self {
            user,
            child,
            stdin,
            lines,
        }
    }

    /// The next JSON line of the script, within [`STEP`].
    async fn next_line(&mut self, waiting_for: &str) -> Value {
        let user = self.user;
        let line = tokio::time::timeout(STEP, self.lines.next_line())
            .await
            .unwrap_or_else(|_| {
                panic!("no line from {user}'s page within {STEP:?} ({waiting_for})")
            })
            .expect("reading netns_page.mjs's output")
            .unwrap_or_else(|| panic!("{user}'s page ended early ({waiting_for})"));
        println!("{user}'s page: {line}");
        serde_json::from_str(&line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
    }

    /// The instance of the `joined` step.
    async fn joined(&mut self) -> String {
        let line = self.next_line("joined").await;
        assert_eq!(
            line["step"], "joined",
            "{}'s page failed: {line}",
            self.user
        );
        line["instance"].as_str().expect("an instance").to_owned()
    }
}

#[tokio::test]
async fn pages_from_their_own_addresses_are_spread_by_nginx() {
    let (_, [flag, modules]) = browser_ready();
    assert!(
        StdCommand::new("ip").arg("-V").output().is_ok(),
        "`ip` is missing: install the Debian package `iproute2` (apt-get install iproute2)"
    );
    assert!(
        StdCommand::new("curl").arg("--version").output().is_ok(),
        "`curl` is missing: install the Debian package `curl` (apt-get install curl)"
    );
    let nginx_binary = nginx_binary();

    // Namespaces first: nginx must find the host-side addresses to listen on them.
    delete_stale();
    let mut namespaces = Namespaces::default();
    // Subnets of this run: 10.213.N.0/30, N in a block chosen by the pid.
    let base = u8::try_from(std::process::id() % 30).unwrap() * CANDIDATES;
    for index in 0..CANDIDATES {
        namespaces.add(index, base + index);
    }

    let redis = RedisServer::start().await;
    let args = with_flag(clustered_args(&redis.url()), &flag, &modules);
    // nginx reaches the gateways over loopback.
    let args = with_flag(args, "--trusted-proxies", "127.0.0.1");
    let mut gateways = Vec::new();
    for id in INSTANCES {
        gateways.push(ChildGateway::start(&with_flag(args.clone(), "--instance-id", id)).await);
    }
    for gateway in &gateways {
        let all_seen = test_support::eventually_async(support::TIMEOUT, || async {
            support::cluster_info(gateway.url()).await["servers"] == 3
        })
        .await;
        assert!(all_seen, "{} does not see 3 servers", gateway.url());
    }
    let ports: Vec<u16> = gateways.iter().map(|g| port_of(g.url())).collect();
    let host_ips: Vec<&str> = namespaces.0.iter().map(|n| n.host_ip.as_str()).collect();
    let nginx = Nginx::start_listening(nginx_binary, &ports, &host_ips).await;
    let url_of = |netns: &Netns| format!("http://{}:{}", netns.host_ip, nginx.port());

    // Probe the candidates in order until two land on different instances.
    let mut first: Option<(&Netns, String)> = None;
    let mut second: Option<(&Netns, String)> = None;
    for netns in &namespaces.0 {
        let url = url_of(netns);
        let deadline = tokio::time::Instant::now() + support::TIMEOUT;
        let instance = loop {
            if let Some(instance) = probe_instance(&netns.name, &url).await {
                break instance;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx does not answer {url} from {}: {}",
                netns.name,
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        println!(
            "{} ({}) -> nginx {url} -> {instance}",
            netns.name, netns.ns_ip
        );
        match &first {
            None => first = Some((netns, instance)),
            Some((_, seen)) if *seen != instance => {
                second = Some((netns, instance));
                break;
            }
            Some(_) => {}
        }
    }
    let (ns_a, instance_a) = first.unwrap();
    let (ns_b, instance_b) = second.unwrap_or_else(|| {
        panic!(
            "all {CANDIDATES} namespace addresses hash to {instance_a}: nginx does not spread them"
        )
    });

    let room = "netns";
    let text_a = "hello from alice's own address";
    let text_b = "and bob from his";
    let artifacts = manifest_dir()
        .parent()
        .unwrap()
        .join("target/browser-artifacts");
    let mut alice = Page::spawn(
        &ns_a.name,
        &url_of(ns_a),
        "alice",
        "bob",
        room,
        text_a,
        text_b,
        &artifacts,
    );
    let mut bob = Page::spawn(
        &ns_b.name,
        &url_of(ns_b),
        "bob",
        "alice",
        room,
        text_b,
        text_a,
        &artifacts,
    );

    // The pages show the instances the probes from their addresses reached: different ones.
    let page_a = alice.joined().await;
    let page_b = bob.joined().await;
    assert_eq!(
        page_a, instance_a,
        "alice's page is not where nginx sent {}",
        ns_a.ns_ip
    );
    assert_eq!(
        page_b, instance_b,
        "bob's page is not where nginx sent {}",
        ns_b.ns_ip
    );
    assert_ne!(page_a, page_b, "both pages on one instance");
    println!(
        "alice ({}) on {page_a}, bob ({}) on {page_b}",
        ns_a.ns_ip, ns_b.ns_ip
    );

    for page in [&mut alice, &mut bob] {
        page.stdin.write_all(b"send\n").await.unwrap();
    }
    for page in [&mut alice, &mut bob] {
        let summary = page.next_line("the messages").await;
        let status = tokio::time::timeout(STEP, page.child.wait())
            .await
            .expect("netns_page.mjs did not exit")
            .expect("waiting for netns_page.mjs");
        assert_eq!(
            summary["ok"],
            true,
            "{}'s page failed (screenshots in {}): {summary}",
            page.user,
            artifacts.display()
        );
        assert!(
            status.success(),
            "{}'s page exited with {status}",
            page.user
        );
        assert_eq!(summary["instance"], summary["instanceAfter"]);
    }
    drop(nginx);
    drop(namespaces);
}
