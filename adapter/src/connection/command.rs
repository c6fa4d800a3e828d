//! The command connection every part of a process shares: multiplexed, reconnecting by
//! itself, routed by key on a Redis Cluster.

use redis::{
    Cmd, Pipeline, RedisFuture, Value,
    aio::{ConnectionLike, ConnectionManager},
    cluster_async::ClusterConnection,
};

/// A handle on the command connection, cheap to clone; use it with any redis-rs command,
/// pipeline or script, bounded with [`within`](crate::within) (or use
/// [`Redis::query`](super::Redis::query), which is). On a Redis Cluster each command goes to
/// the master of its key's slot, so a pipeline's keys must share a slot.
#[derive(Clone)]
pub struct Commands(Connection);

#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Commands {
    pub(crate) fn standalone(conn: ConnectionManager) -> Self {
        Self(Connection::Standalone(conn))
    }

    pub(crate) fn cluster(conn: ClusterConnection) -> Self {
        Self(Connection::Cluster(conn))
    }
}

impl ConnectionLike for Commands {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.0 {
            Connection::Standalone(conn) => conn.req_packed_command(cmd),
            Connection::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.0 {
            Connection::Standalone(conn) => conn.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.0 {
            Connection::Standalone(conn) => conn.get_db(),
            Connection::Cluster(conn) => conn.get_db(),
        }
    }
}
