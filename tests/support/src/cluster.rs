//! A real, local Redis Cluster for tests: `redis-server` processes in cluster mode on free
//! loopback ports, joined by `redis-cli --cluster create`, with nodes that can be killed to
//! force a failover.
//!
//! CLUSTER commands go over plain (non-cluster) connections of the `redis` crate, so the
//! harness needs none of its cluster features.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use crate::{free_port, process_id, redis_server, spawn_redis};

/// How long [`RedisCluster::start`] and [`RedisCluster::wait_for_failover`] wait at most.
const CLUSTER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one CLUSTER/INFO query (connect included) may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between two polls of the cluster's state.
const POLL: Duration = Duration::from_millis(50);
/// Number of hash slots of a Redis Cluster.
const SLOTS: u16 = 16384;

/// A local Redis Cluster owned by one test: every process is killed and the temp dir removed
/// when dropped.
pub struct RedisCluster {
    dir: PathBuf,
    masters: usize,
    replicas_per_master: usize,
    nodes: Vec<ClusterNode>,
}

/// One `redis-server` of the cluster.
struct ClusterNode {
    port: u16,
    /// Its cluster bus port.
    bus_port: u16,
    /// `None` once killed.
    child: Option<Child>,
    /// Stopped by [`RedisCluster::freeze_node`].
    frozen: bool,
}

impl RedisCluster {
    /// Starts `masters * (1 + replicas_per_master)` cluster-mode `redis-server`s on free
    /// loopback ports, creates the cluster with `redis-cli --cluster create` and waits until
    /// every node reports `cluster_state:ok`, all slots assigned and every replica attached.
    ///
    /// # Panics
    /// When `masters < 3` (the minimum `redis-cli` accepts), when `redis-server` (Debian
    /// package `redis-server`) or `redis-cli` (Debian package `redis-tools`) is missing, or
    /// when the cluster is not healthy within 20 s.
    pub async fn start(masters: usize, replicas_per_master: usize) -> Self {
        assert!(
            masters >= 3,
            "a Redis Cluster needs at least 3 masters, asked for {masters}"
        );
        let count = masters * (1 + replicas_per_master);
        let dir = std::env::temp_dir().join(format!(
            "test-redis-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        let mut cluster = Self {
            dir,
            masters,
            replicas_per_master,
            nodes: Vec::with_capacity(count),
        };
        let mut taken = HashSet::new();
        for _ in 0..count {
            let node = start_node(&cluster.dir, &mut taken).await;
            cluster.nodes.push(node);
        }
        cluster.create().await;
        cluster.wait_healthy().await;
        cluster
    }

    /// `redis://127.0.0.1:PORT` of every node currently alive.
    pub fn seed_nodes(&self) -> Vec<String> {
        self.live_ports()
            .map(|port| format!("redis://127.0.0.1:{port}"))
            .collect()
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...` of every node currently alive: the
    /// form the adapter accepts.
    pub fn cluster_url(&self) -> String {
        let hosts: Vec<String> = self
            .live_ports()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", hosts.join(","))
    }

    /// The hash slot of `key`, as the cluster computes it (`CLUSTER KEYSLOT`).
    ///
    /// # Panics
    /// When no live node answers.
    pub async fn slot_of(&self, key: &str) -> u16 {
        let mut errors = Vec::new();
        for port in self.live_ports() {
            let answer = query::<i64>(port, &["CLUSTER", "KEYSLOT", key]).await;
            match answer.map(u16::try_from) {
                Ok(Ok(slot)) => return slot,
                Ok(Err(err)) => errors.push(err.to_string()),
                Err(err) => errors.push(err),
            }
        }
        panic!("no live cluster node answered CLUSTER KEYSLOT: {errors:?}")
    }

    /// The port of the master serving `slot`, as the first live node that answers sees it.
    ///
    /// # Panics
    /// When no live node answers or none knows a master for the slot.
    pub async fn master_for_slot(&self, slot: u16) -> u16 {
        let mut errors = Vec::new();
        for port in self.live_ports() {
            match cluster_nodes(port).await {
                Ok(nodes) => {
                    return slot_owner(&nodes, slot)
                        .unwrap_or_else(|| panic!("node {port} knows no master for slot {slot}"));
                }
                Err(err) => errors.push(err),
            }
        }
        panic!("no live cluster node answered CLUSTER NODES: {errors:?}")
    }

    /// Kills the node on `port` at once (SIGKILL, no graceful shutdown), as a crash would.
    /// Killing a node already dead does nothing.
    ///
    /// # Panics
    /// When `port` is not a node of this cluster.
    pub fn kill_node(&mut self, port: u16) {
        self.node(port).kill();
    }

    /// Kills the node on `port` (SIGKILL) and starts it again at once on the same ports and
    /// with its own cluster config file, as a supervisor restarting a crashed process would:
    /// back within the node timeout, it is the same node (same id, same slots), with no data.
    /// Waits until it answers.
    ///
    /// # Panics
    /// When `port` is not a node of this cluster, or the restarted node does not answer.
    pub async fn restart_node(&mut self, port: u16) {
        let dir = self.dir.clone();
        let node = self.node(port);
        node.kill();
        node.child = Some(spawn_node(&dir, node.port, node.bus_port));
        assert!(
            node.answers_as_itself().await,
            "cluster node on port {port} did not come back after its restart"
        );
    }

    /// Stops the node on `port` (SIGSTOP) and leaves it stopped, as a hung process or a
    /// partition would: the other nodes fail it over after the node timeout, while the
    /// connections clients hold to it stay open and silent. It counts as dead from then on
    /// (and is killed when the cluster is dropped).
    ///
    /// # Panics
    /// When `port` is not a node of this cluster or not running, or `kill` (Debian package
    /// `procps`) cannot stop it.
    pub fn freeze_node(&mut self, port: u16) {
        let node = self.node(port);
        let pid = node
            .child
            .as_ref()
            .map(Child::id)
            .unwrap_or_else(|| panic!("cluster node on port {port} is not running"));
        let stopped = std::process::Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .unwrap_or_else(|err| {
                panic!("cannot run kill ({err}): install the Debian package `procps`")
            });
        assert!(stopped.success(), "kill -STOP {pid} failed: {stopped}");
        node.frozen = true;
    }

    /// The node on `port`.
    fn node(&mut self, port: u16) -> &mut ClusterNode {
        self.nodes
            .iter_mut()
            .find(|node| node.port == port)
            .unwrap_or_else(|| panic!("port {port} is not a node of this cluster"))
    }

    /// Has a replica of the master on `port` take its place in a planned failover (`CLUSTER
    /// FAILOVER`, no data lost), and waits until every live node sees a master other than
    /// that one serving `slot` (one of its slots); returns the new master's port.
    ///
    /// # Panics
    /// When the master has no replica, the replica refuses, or the failover does not complete
    /// within 20 s.
    pub async fn planned_failover(&self, slot: u16, port: u16) -> u16 {
        let nodes = cluster_nodes(port)
            .await
            .unwrap_or_else(|err| panic!("node {port} did not list the cluster: {err}"));
        let master_id = nodes
            .iter()
            .find(|node| node.port == port)
            .map(|node| node.id.clone())
            .unwrap_or_else(|| panic!("node {port} does not list itself"));
        let replica = nodes
            .iter()
            .find(|node| node.master_id == master_id)
            .map(|node| node.port)
            .unwrap_or_else(|| panic!("the master on port {port} has no replica"));
        let answer = query::<String>(replica, &["CLUSTER", "FAILOVER"]).await;
        assert_eq!(answer.as_deref(), Ok("OK"), "CLUSTER FAILOVER on {replica}");
        self.wait_for_failover(slot, port).await
    }

    /// Waits until every live node sees a live master other than `old_master` serving `slot`
    /// and reports `cluster_state:ok`; returns that new master's port.
    ///
    /// # Panics
    /// When that does not happen within 20 s.
    pub async fn wait_for_failover(&self, slot: u16, old_master: u16) -> u16 {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let last = match self.failed_over(slot, old_master).await {
                Ok(new_master) => return new_master,
                Err(err) => err,
            };
            assert!(
                Instant::now() < deadline,
                "slot {slot} did not fail over from {old_master} within {CLUSTER_TIMEOUT:?}: \
                 {last}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ports of the nodes neither killed nor frozen.
    fn live_ports(&self) -> impl Iterator<Item = u16> + '_ {
        self.nodes
            .iter()
            .filter(|node| node.child.is_some() && !node.frozen)
            .map(|node| node.port)
    }

    /// Runs `redis-cli --cluster create` over every node.
    async fn create(&self) {
        let mut command = tokio::process::Command::new("redis-cli");
        command.arg("--cluster").arg("create");
        command.args(
            self.nodes
                .iter()
                .map(|node| format!("127.0.0.1:{}", node.port)),
        );
        command
            .args(["--cluster-replicas", &self.replicas_per_master.to_string()])
            .arg("--cluster-yes")
            .stdin(Stdio::null());
        let output = tokio::time::timeout(CLUSTER_TIMEOUT, command.output())
            .await
            .unwrap_or_else(|_| {
                panic!("redis-cli --cluster create did not finish within {CLUSTER_TIMEOUT:?}")
            })
            .unwrap_or_else(|err| {
                panic!(
                    "cannot run redis-cli ({err}): install the Debian package `redis-tools` \
                     (apt-get install redis-tools)"
                )
            });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Polls until [`Self::healthy`] holds, panicking with its last complaint after 20 s.
    async fn wait_healthy(&self) {
        let deadline = Instant::now() + CLUSTER_TIMEOUT;
        loop {
            let last = match self.healthy().await {
                Ok(()) => return,
                Err(err) => err,
            };
            assert!(
                Instant::now() < deadline,
                "the Redis Cluster was not healthy within {CLUSTER_TIMEOUT:?}: {last}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Whether every node sees the whole cluster as created: state ok, all slots assigned,
    /// all nodes known and connected, every master with its replicas, every replica's
    /// replication link up. `Err` says what is not there yet.
    async fn healthy(&self) -> Result<(), String> {
        let total = self.nodes.len();
        for node in &self.nodes {
            let port = node.port;
            let info = query::<String>(port, &["CLUSTER", "INFO"]).await?;
            for expected in [
                "cluster_state:ok".to_owned(),
                format!("cluster_slots_assigned:{SLOTS}"),
                format!("cluster_known_nodes:{total}"),
            ] {
                if !info.lines().any(|line| line.trim() == expected) {
                    return Err(format!("node {port}: no `{expected}` in CLUSTER INFO"));
                }
            }
            let nodes = cluster_nodes(port).await?;
            check_topology(&nodes, self.masters, self.replicas_per_master)
                .map_err(|err| format!("node {port}: {err}"))?;
            let myself = nodes
                .iter()
                .find(|line| line.has_flag("myself"))
                .ok_or_else(|| format!("node {port}: no `myself` in CLUSTER NODES"))?;
            if myself.has_flag("slave") {
                let replication = query::<String>(port, &["INFO", "replication"]).await?;
                if !replication
                    .lines()
                    .any(|line| line.trim() == "master_link_status:up")
                {
                    return Err(format!("replica {port}: replication link not up yet"));
                }
            }
        }
        Ok(())
    }

    /// `Ok(new master)` once every live node reports `cluster_state:ok` and the same live
    /// master, other than `old_master`, for `slot`.
    async fn failed_over(&self, slot: u16, old_master: u16) -> Result<u16, String> {
        let live: HashSet<u16> = self.live_ports().collect();
        let mut agreed = None;
        for &port in &live {
            let info = query::<String>(port, &["CLUSTER", "INFO"]).await?;
            if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
                return Err(format!("node {port}: cluster_state not ok"));
            }
            let owner = slot_owner(&cluster_nodes(port).await?, slot)
                .ok_or_else(|| format!("node {port}: no master for slot {slot}"))?;
            if owner == old_master || !live.contains(&owner) {
                return Err(format!("node {port}: slot {slot} still served by {owner}"));
            }
            match agreed {
                Some(seen) if seen != owner => {
                    return Err(format!("nodes disagree on slot {slot}: {seen} and {owner}"));
                }
                _ => agreed = Some(owner),
            }
        }
        agreed.ok_or_else(|| "no live node left".to_owned())
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _best_effort = std::fs::remove_dir_all(&self.dir);
    }
}

impl ClusterNode {
    /// Waits until the node answers (true) or its process exits, or another test's node
    /// answers on its port (false: it could not listen).
    ///
    /// # Panics
    /// When it does neither within 10 s.
    async fn answers_as_itself(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(info) = query::<String>(self.port, &["INFO", "server"]).await {
                // Another test's node may hold the port: then ours exited, and that one answers.
                let ours = self.child.as_ref().map(Child::id);
                return ours.is_some() && process_id(&info) == ours;
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|child| matches!(child.try_wait(), Ok(Some(_))));
            if exited {
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "cluster node redis-server on port {} did not answer within 10 s",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILLs and reaps the process, if still running.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _already_dead = child.kill();
            let _reaped = child.wait();
        }
        self.frozen = false;
    }
}

/// Starts one node on fresh ports and waits until it answers. A port found free can be taken
/// by another test before the node binds it; the node then exits, and it is started again on
/// other ports.
///
/// # Panics
/// When five attempts fail, or a node neither answers nor exits within 10 s.
async fn start_node(dir: &Path, taken: &mut HashSet<u16>) -> ClusterNode {
    for _ in 0..5 {
        let [port, bus_port] = [0; 2].map(|_| {
            loop {
                let port = free_port();
                if taken.insert(port) {
                    break port;
                }
            }
        });
        let mut node = ClusterNode {
            port,
            bus_port,
            frozen: false,
            child: Some(spawn_node(dir, port, bus_port)),
        };
        if node.answers_as_itself().await {
            return node;
        }
        node.kill();
        let log = std::fs::read_to_string(dir.join(port.to_string()).join("redis.log"))
            .unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(3).collect();
        eprintln!("cluster node on port {port} exited, retrying on other ports: {tail:?}");
    }
    panic!("no cluster node would start after 5 attempts on fresh ports")
}

/// Spawns one cluster-mode `redis-server` on `port` (cluster bus on `bus_port`), without
/// persistence, in its own directory under `dir`.
///
/// Failover is tuned to be quick and certain: a 1 s node timeout, and replicas that never
/// consider their data too old to take over (`cluster-replica-validity-factor 0`).
fn spawn_node(dir: &Path, port: u16, bus_port: u16) -> Child {
    let node_dir = dir.join(port.to_string());
    std::fs::create_dir_all(&node_dir)
        .unwrap_or_else(|err| panic!("creating {}: {err}", node_dir.display()));
    let mut command = redis_server(port, &node_dir);
    command
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-port", &bus_port.to_string()])
        .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
        .args(["--cluster-node-timeout", "1000"])
        .args(["--cluster-replica-validity-factor", "0"])
        // Replicas sync at once instead of after the default 5 s of diskless batching.
        .args(["--repl-diskless-sync-delay", "0"])
        .args(["--logfile", "redis.log"]);
    spawn_redis(&mut command)
}

/// Sends one command to the node on `port` over a fresh plain connection; its reply as `T`.
async fn query<T: redis::FromRedisValue>(port: u16, args: &[&str]) -> Result<T, String> {
    let attempt = async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))
            .map_err(|err| err.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|err| format!("connecting: {err}"))?;
        redis::cmd(args[0])
            .arg(&args[1..])
            .query_async::<T>(&mut conn)
            .await
            .map_err(|err| err.to_string())
    };
    tokio::time::timeout(QUERY_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {QUERY_TIMEOUT:?}")))
        .map_err(|err| format!("node {port}: {} failed: {err}", args.join(" ")))
}

/// `CLUSTER NODES` of the node on `port`, parsed.
async fn cluster_nodes(port: u16) -> Result<Vec<NodeLine>, String> {
    let text = query::<String>(port, &["CLUSTER", "NODES"]).await?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(NodeLine::parse)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| format!("node {port}: unparsable CLUSTER NODES:\n{text}"))
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@cport[,hostname]> <flags> <master> <ping-sent> <pong-recv> <epoch>
/// <link-state> <slot> <slot> ...`.
#[derive(Debug)]
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    /// Id of its master, for a replica; `-` for a master.
    master_id: String,
    link_state: String,
    /// Inclusive slot ranges it serves (migration entries `[...]` skipped).
    slots: Vec<(u16, u16)>,
}

impl NodeLine {
    /// Parses one line; `None` when it does not have the documented shape.
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [
            id,
            address,
            flags,
            master_id,
            _ping,
            _pong,
            _epoch,
            link_state,
            slots @ ..,
        ] = fields.as_slice()
        else {
            return None;
        };
        let host_port = address.split(['@', ',']).next()?;
        let port = host_port.rsplit_once(':')?.1.parse().ok()?;
        let slots = slots
            .iter()
            .filter(|slot| !slot.starts_with('['))
            .map(|range| match range.split_once('-') {
                Some((start, end)) => Some((start.parse().ok()?, end.parse().ok()?)),
                None => range.parse().ok().map(|slot| (slot, slot)),
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            id: (*id).to_owned(),
            port,
            flags: flags.split(',').map(str::to_owned).collect(),
            master_id: (*master_id).to_owned(),
            link_state: (*link_state).to_owned(),
            slots,
        })
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    fn serves(&self, slot: u16) -> bool {
        self.slots
            .iter()
            .any(|&(start, end)| (start..=end).contains(&slot))
    }
}

/// Port of the master that serves `slot` in one node's view.
fn slot_owner(nodes: &[NodeLine], slot: u16) -> Option<u16> {
    nodes
        .iter()
        .find(|node| node.has_flag("master") && node.serves(slot))
        .map(|node| node.port)
}

/// Whether one node's view holds `masters` masters with `replicas` connected replicas each,
/// every link connected and no node failing or still in handshake.
fn check_topology(nodes: &[NodeLine], masters: usize, replicas: usize) -> Result<(), String> {
    if let Some(bad) = nodes.iter().find(|node| {
        node.link_state != "connected"
            || ["fail", "fail?", "handshake", "noaddr"]
                .iter()
                .any(|flag| node.has_flag(flag))
    }) {
        return Err(format!("{bad:?} is not a healthy member yet"));
    }
    let master_ids: Vec<&str> = nodes
        .iter()
        .filter(|node| node.has_flag("master"))
        .map(|node| node.id.as_str())
        .collect();
    if master_ids.len() != masters {
        return Err(format!("{} masters, expected {masters}", master_ids.len()));
    }
    for master in master_ids {
        let attached = nodes
            .iter()
            .filter(|node| node.has_flag("slave") && node.master_id == master)
            .count();
        if attached != replicas {
            return Err(format!(
                "master {master} has {attached} replicas, expected {replicas}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cluster_nodes_lines() {
        let line = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,host \
                    slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected";
        let node = NodeLine::parse(line).unwrap_or_else(|| panic!("unparsed: {line}"));
        assert_eq!(node.port, 30004);
        assert!(node.has_flag("slave"));
        assert_eq!(node.master_id, "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca");
        let line = "e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 \
                    myself,master - 0 0 1 connected 0-5460 7000 [93->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]";
        let node = NodeLine::parse(line).unwrap_or_else(|| panic!("unparsed: {line}"));
        assert_eq!(node.slots, vec![(0, 5460), (7000, 7000)]);
        assert!(node.serves(5460) && node.serves(7000) && !node.serves(5461));
    }
}
