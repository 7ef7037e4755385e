//! ip-restriction: allow or deny callers by address or CIDR block, before anything else runs.
//! A deny entry wins over an allow entry; a non-empty allow list refuses everyone else.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

use super::{Build, Guarded, Plugin, Verdict};
use crate::config::ConfigError;
use crate::errors::Reject;

/// `routes[].plugins.ip-restriction` of the core config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpRestrictionConfig {
    /// When not empty, only these addresses or CIDR blocks may call the route.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Always refused, even when also allowed.
    #[serde(default)]
    pub deny: Vec<String>,
}

pub struct IpRestriction {
    allow: Vec<IpNet>,
    deny: Vec<IpNet>,
}

/// Addresses or CIDR blocks; `field` names the list in errors.
pub fn parse_list(list: &[String], field: &str) -> Result<Vec<IpNet>, ConfigError> {
    list.iter()
        .enumerate()
        .map(|(i, entry)| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    ConfigError::new(
                        format!("{field}[{i}]"),
                        format!("expected an IP address or CIDR block, got {entry:?}"),
                    )
                })
        })
        .collect()
}

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    Ok(Box::new(IpRestriction::build(&cx.parse()?, &cx.field)?))
}

impl Plugin for IpRestriction {
    fn guard(&self, request: &Guarded<'_>) -> Verdict {
        if self.permits(request.client_ip) {
            Verdict::Pass
        } else {
            Verdict::Refuse(Reject::IpForbidden)
        }
    }
}

impl IpRestriction {
    /// `field` is the config path of the plugin, for errors.
    pub fn build(cfg: &IpRestrictionConfig, field: &str) -> Result<IpRestriction, ConfigError> {
        let allow = parse_list(&cfg.allow, &format!("{field}.allow"))?;
        let deny = parse_list(&cfg.deny, &format!("{field}.deny"))?;
        if allow.is_empty() && deny.is_empty() {
            return Err(ConfigError::new(
                field,
                "expected at least one entry in allow or deny",
            ));
        }
        Ok(IpRestriction { allow, deny })
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(allow: &[&str], deny: &[&str]) -> Result<IpRestriction, ConfigError> {
        IpRestriction::build(
            &IpRestrictionConfig {
                allow: allow.iter().map(|s| s.to_string()).collect(),
                deny: deny.iter().map(|s| s.to_string()).collect(),
            },
            "routes[0].ip_restriction",
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn allow_list_admits_only_its_members_and_deny_wins() {
        let r = build(
            &["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
            &["10.1.0.0/16"],
        )
        .unwrap();
        assert!(r.permits(ip("10.2.3.4")));
        assert!(!r.permits(ip("10.1.2.3")), "deny wins over allow");
        assert!(r.permits(ip("192.0.2.7")));
        assert!(!r.permits(ip("192.0.2.8")));
        assert!(r.permits(ip("2001:db8::1")));
        assert!(
            r.permits(ip("::ffff:10.2.3.4")),
            "IPv4-mapped IPv6 counts as IPv4"
        );
    }

    #[test]
    fn deny_only_admits_everyone_else() {
        let r = build(&[], &["127.0.0.1"]).unwrap();
        assert!(!r.permits(ip("127.0.0.1")));
        assert!(r.permits(ip("127.0.0.2")));
    }

    #[test]
    fn bad_entries_name_the_field() {
        let e = build(&["10.0.0.0/8", "ten"], &[]).err().unwrap();
        assert_eq!(e.path, "routes[0].ip_restriction.allow[1]");
        let e = build(&[], &[]).err().unwrap();
        assert_eq!(e.path, "routes[0].ip_restriction");
    }
}
