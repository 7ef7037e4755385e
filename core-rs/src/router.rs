//! Route matching by host, then path, then method.
//!
//! Paths are compiled once per config into `matchit` radix trees. matchit already ranks a static
//! segment above a `{param}` above a catch-all, which is exactly "the most specific route wins".
//! A path ending in `/*` is a prefix route; it becomes the catch-all `{*rest}` plus its bare forms.

use std::collections::{BTreeMap, HashMap};

use http::Method;

use crate::config::{ConfigError, RouteConfig};
use crate::path_normalise::{normalise, PathRules};

/// Set of HTTP methods a route accepts; `ANY` accepts every method, standard or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodSet(u16);

impl MethodSet {
    pub const ANY: MethodSet = MethodSet(u16::MAX);
    const STANDARD: [&'static str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    ];

    fn bit(method: &str) -> Option<u16> {
        Self::STANDARD
            .iter()
            .position(|m| *m == method)
            .map(|i| 1 << i)
    }

    pub fn parse(methods: &[String]) -> Result<MethodSet, (usize, String)> {
        if methods.is_empty() {
            return Ok(MethodSet::ANY);
        }
        let mut bits = 0;
        for (i, m) in methods.iter().enumerate() {
            let upper = m.to_ascii_uppercase();
            bits |= Self::bit(&upper).ok_or((i, upper))?;
        }
        Ok(MethodSet(bits))
    }

    pub fn contains(self, method: &Method) -> bool {
        self == MethodSet::ANY || Self::bit(method.as_str()).is_some_and(|b| self.0 & b != 0)
    }

    fn names(self) -> impl Iterator<Item = &'static str> {
        Self::STANDARD
            .iter()
            .enumerate()
            .filter(move |(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, m)| *m)
    }
}

#[derive(Debug, Clone)]
struct Candidate {
    route: usize,
    methods: MethodSet,
    /// Exact and `{param}` paths outrank a prefix route registered at the same pattern.
    from_prefix: bool,
}

#[derive(Default)]
struct PathTable {
    tree: matchit::Router<Vec<Candidate>>,
}

/// What the router decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Found(usize),
    MethodNotAllowed(String),
    NotFound,
}

#[derive(Default)]
pub struct Router {
    exact_hosts: HashMap<String, PathTable>,
    /// `*.example.com` entries as (".example.com", table), longest suffix first.
    wildcard_hosts: Vec<(String, PathTable)>,
    any_host: PathTable,
}

/// A route's path turned into the matchit patterns that stand for it. Requests are routed
/// by their normalised path, so a route path that is not in normal form could never match.
fn patterns_for(path: &str, rules: PathRules) -> Result<Vec<(String, bool)>, String> {
    if !path.starts_with('/') {
        return Err(format!("expected a path starting with '/', got {path:?}"));
    }
    if path.contains(';') {
        return Err(format!(
            "requests are routed without their ;parameters, so {path:?} can never match"
        ));
    }
    match normalise(path, rules) {
        Ok(normal) if normal == path => {}
        Ok(normal) => {
            return Err(format!(
                "requests are routed by their normalised path, so {path:?} can never match; write {normal:?}"
            ))
        }
        Err(e) => return Err(format!("{path:?} can never match: {}", e.message())),
    }
    if let Some(base) = path.strip_suffix("/*") {
        let mut pats = vec![
            (format!("{base}/{{*pygate_rest}}"), true),
            (format!("{base}/"), true),
        ];
        if !base.is_empty() {
            pats.push((base.to_string(), true));
        }
        return Ok(pats);
    }
    if path.contains('*') {
        return Err(format!(
            "'*' is only allowed as a trailing '/*' (prefix match), got {path:?}"
        ));
    }
    Ok(vec![(path.to_string(), false)])
}

impl Router {
    pub fn build(routes: &[RouteConfig], rules: PathRules) -> Result<Router, ConfigError> {
        // host key -> pattern -> candidates (and where each pattern came from, for errors)
        type Patterns = BTreeMap<String, (Vec<Candidate>, String)>;
        let mut by_host: BTreeMap<String, Patterns> = BTreeMap::new();

        for (ri, route) in routes.iter().enumerate() {
            let methods = MethodSet::parse(&route.methods).map_err(|(mi, m)| {
                ConfigError::new(
                    format!("routes[{ri}].methods[{mi}]"),
                    format!("expected an HTTP method (GET, POST, ...), got {m:?}"),
                )
            })?;
            if route.paths.is_empty() {
                return Err(ConfigError::new(
                    format!("routes[{ri}].paths"),
                    "expected at least one path",
                ));
            }
            let hosts: Vec<String> = if route.hosts.is_empty() {
                vec![String::new()]
            } else {
                route.hosts.iter().map(|h| h.to_ascii_lowercase()).collect()
            };
            for (pi, path) in route.paths.iter().enumerate() {
                let field = format!("routes[{ri}].paths[{pi}]");
                let pats = patterns_for(path, rules).map_err(|m| ConfigError::new(&field, m))?;
                for host in &hosts {
                    let table = by_host.entry(host.clone()).or_default();
                    for (pat, from_prefix) in &pats {
                        let slot = table
                            .entry(pat.clone())
                            .or_insert_with(|| (Vec::new(), field.clone()));
                        slot.0.push(Candidate {
                            route: ri,
                            methods,
                            from_prefix: *from_prefix,
                        });
                    }
                }
            }
        }

        let mut router = Router::default();
        for (host, patterns) in by_host {
            let mut table = PathTable::default();
            for (pattern, (mut candidates, field)) in patterns {
                candidates.sort_by_key(|c| c.from_prefix);
                table
                    .tree
                    .insert(pattern.clone(), candidates)
                    .map_err(|e| {
                        ConfigError::new(field, format!("path conflicts with another route: {e}"))
                    })?;
            }
            if host.is_empty() {
                router.any_host = table;
            } else if let Some(suffix) = host.strip_prefix('*') {
                router.wildcard_hosts.push((suffix.to_string(), table));
            } else {
                router.exact_hosts.insert(host, table);
            }
        }
        router
            .wildcard_hosts
            .sort_by_key(|(suffix, _)| std::cmp::Reverse(suffix.len()));
        Ok(router)
    }

    /// Host-specific routes are tried before wildcard hosts, and those before host-less routes.
    pub fn find(&self, host: &str, path: &str, method: &Method) -> RouteMatch {
        let host = normalise_host(host);
        let mut allowed: Option<MethodSet> = None;
        let tables = self
            .exact_hosts
            .get(host.as_ref())
            .into_iter()
            .chain(
                self.wildcard_hosts
                    .iter()
                    .filter(|(suffix, _)| host.ends_with(suffix.as_str()))
                    .map(|(_, t)| t),
            )
            .chain(std::iter::once(&self.any_host));
        for table in tables {
            if let Ok(hit) = table.tree.at(path) {
                for c in hit.value {
                    if c.methods.contains(method) {
                        return RouteMatch::Found(c.route);
                    }
                    let acc = allowed.get_or_insert(MethodSet(0));
                    acc.0 |= c.methods.0;
                }
            }
        }
        match allowed {
            Some(set) => RouteMatch::MethodNotAllowed(set.names().collect::<Vec<_>>().join(", ")),
            None => RouteMatch::NotFound,
        }
    }
}

/// Lower-case the host and drop a `:port` (but keep IPv6 brackets intact) and the dot of
/// a fully qualified name: `API.example.com.:80` is routed as `api.example.com`.
fn normalise_host(host: &str) -> std::borrow::Cow<'_, str> {
    let without_port = match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    };
    let without_port = without_port.strip_suffix('.').unwrap_or(without_port);
    if without_port.bytes().any(|b| b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(without_port.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(without_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(name: &str, hosts: &[&str], paths: &[&str], methods: &[&str]) -> RouteConfig {
        RouteConfig {
            name: name.into(),
            hosts: hosts.iter().map(|s| s.to_string()).collect(),
            paths: paths.iter().map(|s| s.to_string()).collect(),
            methods: methods.iter().map(|s| s.to_string()).collect(),
            upstream: "u".into(),
            ..RouteConfig::default()
        }
    }

    fn build(routes: &[RouteConfig]) -> Result<Router, ConfigError> {
        Router::build(routes, RULES)
    }

    const RULES: PathRules = PathRules {
        merge_slashes: true,
        escaped_slashes: crate::config::EscapedSlashes::Reject,
    };

    fn find(r: &Router, host: &str, path: &str, method: &str) -> RouteMatch {
        r.find(host, path, &Method::from_bytes(method.as_bytes()).unwrap())
    }

    #[test]
    fn most_specific_path_wins() {
        let r = build(&[
            route("prefix", &[], &["/api/*"], &[]),
            route("param", &[], &["/api/items/{id}"], &[]),
            route("exact", &[], &["/api/items/special"], &[]),
        ])
        .unwrap();
        assert_eq!(
            find(&r, "h", "/api/items/special", "GET"),
            RouteMatch::Found(2)
        );
        assert_eq!(find(&r, "h", "/api/items/42", "GET"), RouteMatch::Found(1));
        assert_eq!(
            find(&r, "h", "/api/items/42/x", "GET"),
            RouteMatch::Found(0)
        );
        assert_eq!(find(&r, "h", "/api", "GET"), RouteMatch::Found(0));
        assert_eq!(find(&r, "h", "/api/", "GET"), RouteMatch::Found(0));
        assert_eq!(find(&r, "h", "/apix", "GET"), RouteMatch::NotFound);
        assert_eq!(find(&r, "h", "/other", "GET"), RouteMatch::NotFound);
    }

    #[test]
    fn exact_beats_prefix_at_same_pattern() {
        let r = build(&[
            route("prefix", &[], &["/static/*"], &[]),
            route("exact", &[], &["/static"], &[]),
        ])
        .unwrap();
        assert_eq!(find(&r, "h", "/static", "GET"), RouteMatch::Found(1));
        assert_eq!(find(&r, "h", "/static/a.css", "GET"), RouteMatch::Found(0));
    }

    #[test]
    fn methods_and_405() {
        let r = build(&[
            route("read", &[], &["/items"], &["GET"]),
            route("write", &[], &["/items"], &["post", "PUT"]),
        ])
        .unwrap();
        assert_eq!(find(&r, "h", "/items", "GET"), RouteMatch::Found(0));
        assert_eq!(find(&r, "h", "/items", "POST"), RouteMatch::Found(1));
        assert_eq!(
            find(&r, "h", "/items", "DELETE"),
            RouteMatch::MethodNotAllowed("GET, POST, PUT".into())
        );
    }

    #[test]
    fn hosts_exact_then_wildcard_then_any() {
        let r = build(&[
            route("any", &[], &["/"], &[]),
            route("wild", &["*.example.com"], &["/"], &[]),
            route("exact", &["api.example.com"], &["/"], &[]),
        ])
        .unwrap();
        assert_eq!(
            find(&r, "API.example.com:8080", "/", "GET"),
            RouteMatch::Found(2)
        );
        assert_eq!(
            find(&r, "www.example.com", "/", "GET"),
            RouteMatch::Found(1)
        );
        assert_eq!(find(&r, "other.org", "/", "GET"), RouteMatch::Found(0));
        assert_eq!(find(&r, "[::1]:80", "/", "GET"), RouteMatch::Found(0));
        assert_eq!(
            find(&r, "api.example.com.", "/", "GET"),
            RouteMatch::Found(2)
        );
        assert_eq!(
            find(&r, "Shop.Example.Com.:8080", "/", "GET"),
            RouteMatch::Found(1)
        );
    }

    #[test]
    fn host_specific_405_falls_back_to_any_host() {
        let r = build(&[
            route("host-get", &["a.test"], &["/x"], &["GET"]),
            route("any-post", &[], &["/x"], &["POST"]),
        ])
        .unwrap();
        assert_eq!(find(&r, "a.test", "/x", "POST"), RouteMatch::Found(1));
    }

    #[test]
    fn bad_paths_and_methods_name_the_field() {
        let e = build(&[route("a", &[], &["/ok", "nope"], &[])])
            .err()
            .unwrap();
        assert_eq!(e.path, "routes[0].paths[1]");
        let e = build(&[route("a", &[], &["/a*b"], &[])]).err().unwrap();
        assert!(e.message.contains("trailing"), "{}", e.message);
        let e = build(&[route("a", &[], &["/"], &["GET", "FETCH"])])
            .err()
            .unwrap();
        assert_eq!(e.path, "routes[0].methods[1]");
        let e = build(&[route("a", &[], &[], &[])]).err().unwrap();
        assert_eq!(e.path, "routes[0].paths");
    }

    #[test]
    fn conflicting_params_are_a_config_error() {
        let e = build(&[
            route("a", &[], &["/u/{id}"], &[]),
            route("b", &[], &["/u/{name}"], &[]),
        ])
        .err()
        .unwrap();
        assert!(e.path.starts_with("routes["), "{e}");
    }

    #[test]
    fn route_paths_must_be_normal() {
        for path in [
            "/a/../b", "/a/./b", "/a//b", "/%61", "/a%2fb", "/a\\b", "/a/..;/b", "/a;v=1",
        ] {
            let e = build(&[route("a", &[], &[path], &[])]).err().unwrap();
            assert_eq!(e.path, "routes[0].paths[0]", "{path}");
            assert!(e.message.contains("never match"), "{path}: {}", e.message);
        }
        let kept = PathRules {
            merge_slashes: false,
            escaped_slashes: crate::config::EscapedSlashes::Keep,
        };
        assert!(Router::build(&[route("a", &[], &["/a//b%2Fc"], &[])], kept).is_ok());
        assert!(build(&[route("a", &[], &["/a/{id}/x%20y/*"], &[])]).is_ok());
    }
}
