//! Which Redis a URL names: one Redis (`redis://`, `rediss://`, `unix://`) or a Redis Cluster
//! (`redis+cluster://host:port,host:port`, or `rediss+cluster://` over TLS).

/// A parsed Redis URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RedisUrl {
    /// One Redis, the URL as given.
    Standalone(String),
    /// A Redis Cluster, reached through these seed node URLs.
    Cluster(Vec<String>),
}

impl RedisUrl {
    /// Reads `url`.
    pub fn parse(url: &str) -> Self {
        match seed_nodes(url) {
            Some(nodes) => Self::Cluster(nodes),
            None => Self::Standalone(url.to_owned()),
        }
    }
}

/// The seed node URLs of a `redis+cluster://` URL, `None` for any other URL: for an
/// application that opens its own connections to the cluster the adapter runs on.
///
/// `redis+cluster://[user:password@]host:port,host:port[/...]` gives
/// `redis://[user:password@]host:port` for each listed node.
///
/// ```
/// assert_eq!(
///     redis_adapter::cluster_nodes("redis+cluster://10.0.0.1:7000,10.0.0.2:7000"),
///     Some(vec!["redis://10.0.0.1:7000".to_owned(), "redis://10.0.0.2:7000".to_owned()])
/// );
/// assert_eq!(redis_adapter::cluster_nodes("redis://10.0.0.1:6379"), None);
/// ```
pub fn seed_nodes(url: &str) -> Option<Vec<String>> {
    let (scheme, rest) = match url.strip_prefix("rediss+cluster://") {
        Some(rest) => ("rediss", rest),
        None => ("redis", url.strip_prefix("redis+cluster://")?),
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (credentials, hosts) = match authority.rsplit_once('@') {
        Some((credentials, hosts)) => (format!("{credentials}@"), hosts),
        None => (String::new(), authority),
    };
    Some(
        hosts
            .split(',')
            .filter(|host| !host.is_empty())
            .map(|host| format!("{scheme}://{credentials}{host}"))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::seed_nodes;

    #[test]
    fn reads_seed_nodes_from_a_cluster_url() {
        assert_eq!(seed_nodes("redis://127.0.0.1:6379"), None);
        assert_eq!(
            seed_nodes("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/"),
            Some(vec![
                "redis://127.0.0.1:7000".to_owned(),
                "redis://127.0.0.1:7001".to_owned()
            ])
        );
        assert_eq!(
            seed_nodes("redis+cluster://:secret@10.0.0.1:7000,10.0.0.2:7000"),
            Some(vec![
                "redis://:secret@10.0.0.1:7000".to_owned(),
                "redis://:secret@10.0.0.2:7000".to_owned()
            ])
        );
        assert_eq!(seed_nodes("redis+cluster://"), Some(vec![]));
        assert_eq!(
            seed_nodes("rediss+cluster://u:p@h1:7000,h2:7000"),
            Some(vec![
                "rediss://u:p@h1:7000".to_owned(),
                "rediss://u:p@h2:7000".to_owned()
            ])
        );
    }
}
