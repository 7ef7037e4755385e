//! The Redis URL forms `cluster.redis` takes, and connecting to each.
//!
//! - `redis://HOST:PORT/DB`, `rediss://HOST:PORT/DB` (TLS, verified against the system's roots);
//! - `redis+cluster://HOST:PORT,HOST:PORT` (and `rediss+cluster://`): a Redis Cluster, from
//!   any of its nodes (the client learns the slots and follows MOVED/ASK);
//! - `redis+sentinel://HOST:PORT,HOST:PORT/MASTER/DB` (and `rediss+sentinel://`): the master
//!   that the Sentinels name, found again after a failover.
//!
//! Credentials never come in the URL (the Python config refuses it): they are
//! `cluster.username` / `cluster.password`, a secret field, so the URL can be shown.

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionAddr, ConnectionInfo, RedisConnectionInfo};

use super::ClusterConfig;

#[derive(Debug, Clone, PartialEq)]
pub enum RedisTarget {
    Single {
        tls: bool,
        host: String,
        port: u16,
        db: i64,
    },
    Cluster {
        tls: bool,
        nodes: Vec<(String, u16)>,
    },
    Sentinel {
        tls: bool,
        sentinels: Vec<(String, u16)>,
        master: String,
        db: i64,
    },
}

pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

fn host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    if s.is_empty() {
        return Err("expected HOST or HOST:PORT".into());
    }
    if s.contains('@') {
        return Err(
            "expected no credentials in the URL: use cluster.username / cluster.password".into(),
        );
    }
    let (host, port) = match s.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
            let port = p
                .parse::<u16>()
                .map_err(|_| format!("expected a port number, got {p:?}"))?;
            (h, port)
        }
        _ => (s, default_port),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err("expected a host name".into());
    }
    Ok((host.to_string(), port))
}

fn db(s: Option<&str>) -> Result<i64, String> {
    match s {
        None | Some("") => Ok(0),
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| *d >= 0)
            .ok_or_else(|| format!("expected a database number after the host, got {d:?}")),
    }
}

impl RedisTarget {
    pub fn parse(url: &str) -> Result<RedisTarget, String> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err("expected a URL such as redis://HOST:6379/0".into());
        };
        let (tls, kind) = match scheme {
            "redis" => (false, ""),
            "rediss" => (true, ""),
            "redis+cluster" => (false, "cluster"),
            "rediss+cluster" => (true, "cluster"),
            "redis+sentinel" => (false, "sentinel"),
            "rediss+sentinel" => (true, "sentinel"),
            other => {
                return Err(format!(
                    "unknown scheme {other:?}; expected redis, rediss, redis+cluster, \
                     rediss+cluster, redis+sentinel or rediss+sentinel"
                ))
            }
        };
        let mut parts = rest.splitn(3, '/');
        let hosts = parts.next().unwrap_or("");
        let list = |default| -> Result<Vec<(String, u16)>, String> {
            hosts.split(',').map(|h| host_port(h, default)).collect()
        };
        match kind {
            "" => {
                let (host, port) = host_port(hosts, 6379)?;
                if parts.clone().nth(1).is_some() {
                    return Err("expected redis://HOST:PORT/DB".into());
                }
                Ok(RedisTarget::Single {
                    tls,
                    host,
                    port,
                    db: db(parts.next())?,
                })
            }
            "cluster" => {
                if parts.next().is_some_and(|p| !p.is_empty()) {
                    return Err("a Redis Cluster has only database 0: expected no /DB".into());
                }
                Ok(RedisTarget::Cluster {
                    tls,
                    nodes: list(6379)?,
                })
            }
            _ => {
                let master = parts.next().unwrap_or("").to_string();
                if master.is_empty() {
                    return Err(
                        "expected redis+sentinel://HOST:PORT,HOST:PORT/MASTER_NAME/DB".into(),
                    );
                }
                Ok(RedisTarget::Sentinel {
                    tls,
                    sentinels: list(26379)?,
                    master,
                    db: db(parts.next())?,
                })
            }
        }
    }

    /// The URL as logs and status show it (it never holds credentials).
    pub fn display(&self) -> String {
        let join = |v: &[(String, u16)]| {
            v.iter()
                .map(|(h, p)| format!("{h}:{p}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let s = |tls: bool| if tls { "rediss" } else { "redis" };
        match self {
            RedisTarget::Single {
                tls,
                host,
                port,
                db,
            } => format!("{}://{host}:{port}/{db}", s(*tls)),
            RedisTarget::Cluster { tls, nodes } => format!("{}+cluster://{}", s(*tls), join(nodes)),
            RedisTarget::Sentinel {
                tls,
                sentinels,
                master,
                db,
            } => {
                format!("{}+sentinel://{}/{master}/{db}", s(*tls), join(sentinels))
            }
        }
    }

    fn info(tls: bool, host: &str, port: u16, db: i64, config: &ClusterConfig) -> ConnectionInfo {
        let addr = if tls {
            ConnectionAddr::TcpTls {
                host: host.to_string(),
                port,
                insecure: false,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host.to_string(), port)
        };
        ConnectionInfo {
            addr,
            redis: RedisConnectionInfo {
                db,
                username: config.username.clone(),
                password: config.password.clone(),
                ..Default::default()
            },
        }
    }

    pub async fn connect(&self, config: &ClusterConfig) -> Result<Conn, String> {
        let e = |e: redis::RedisError| e.to_string();
        match self {
            RedisTarget::Single {
                tls,
                host,
                port,
                db,
            } => {
                let client =
                    redis::Client::open(Self::info(*tls, host, *port, *db, config)).map_err(e)?;
                Ok(Conn::Single(
                    client.get_multiplexed_async_connection().await.map_err(e)?,
                ))
            }
            RedisTarget::Cluster { tls, nodes } => {
                let infos: Vec<_> = nodes
                    .iter()
                    .map(|(h, p)| Self::info(*tls, h, *p, 0, config))
                    .collect();
                let timeout = std::time::Duration::from_millis(config.timeout_ms);
                let client = redis::cluster::ClusterClientBuilder::new(infos)
                    .connection_timeout(timeout * 4)
                    .response_timeout(timeout)
                    .build()
                    .map_err(e)?;
                Ok(Conn::Cluster(
                    client.get_async_connection().await.map_err(e)?,
                ))
            }
            RedisTarget::Sentinel {
                tls,
                sentinels,
                master,
                db,
            } => {
                use redis::sentinel::{
                    SentinelClient, SentinelNodeConnectionInfo, SentinelServerType,
                };
                // The Sentinels themselves are asked without the data nodes' credentials.
                let sentinel_infos: Vec<_> = sentinels
                    .iter()
                    .map(|(h, p)| {
                        let mut i = Self::info(*tls, h, *p, 0, config);
                        i.redis = RedisConnectionInfo::default();
                        i
                    })
                    .collect();
                let node = SentinelNodeConnectionInfo {
                    tls_mode: tls.then_some(redis::TlsMode::Secure),
                    redis_connection_info: Some(Self::info(*tls, "", 0, *db, config).redis),
                };
                let mut client = SentinelClient::build(
                    sentinel_infos,
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(e)?;
                Ok(Conn::Single(
                    client.get_async_connection().await.map_err(e)?,
                ))
            }
        }
    }
}

impl Conn {
    pub async fn invoke<T: redis::FromRedisValue>(
        &mut self,
        call: &redis::ScriptInvocation<'_>,
    ) -> redis::RedisResult<T> {
        match self {
            Conn::Single(c) => call.invoke_async(c).await,
            Conn::Cluster(c) => call.invoke_async(c).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        assert_eq!(
            RedisTarget::parse("redis://127.0.0.1:6390/2").unwrap(),
            RedisTarget::Single {
                tls: false,
                host: "127.0.0.1".into(),
                port: 6390,
                db: 2
            }
        );
        assert_eq!(
            RedisTarget::parse("rediss://r.example").unwrap().display(),
            "rediss://r.example:6379/0"
        );
        assert_eq!(
            RedisTarget::parse("redis+cluster://a:7000,b:7001")
                .unwrap()
                .display(),
            "redis+cluster://a:7000,b:7001"
        );
        assert_eq!(
            RedisTarget::parse("redis+sentinel://s1,s2:26380/mymaster/1")
                .unwrap()
                .display(),
            "redis+sentinel://s1:26379,s2:26380/mymaster/1"
        );
        for bad in [
            "http://x",
            "redis://:pw@x:6379",
            "redis://x:port",
            "redis+sentinel://s1:26379",
            "redis+cluster://a:7000/3",
            "redis://x/-1",
            "x",
        ] {
            assert!(RedisTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
