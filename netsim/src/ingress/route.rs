//! The routing core of the ingress-nginx model, sans-IO: plain Ingress rules in, an nginx-like
//! configuration out (servers by host, locations by path), and a request's (Host, path) in,
//! the chosen upstream out. Nothing here reads the cluster, a socket or a clock.
//!
//! It follows what ingress-nginx renders into nginx.conf and how nginx then picks:
//! * one `server` per rule host, plus the catch-all `_` for rules without a host; a request
//!   goes to the server whose name equals its Host (lowercased, port removed), else to the
//!   first wildcard server (`*.foo.com`, one extra label) that matches, else to `_`;
//! * locations: `Exact` → `location = /p`; `Prefix /p` → `location /p/` plus
//!   `location = /p` (unless an `Exact /p` exists); `ImplementationSpecific` → a plain nginx
//!   prefix `location /p`. nginx takes an exact match first, else the longest prefix;
//! * every server has a root `location /`: the rule's own `/` if one exists, else the
//!   Ingress's `spec.defaultBackend`, else the controller's default backend (404);
//! * on a conflict (same host, path and pathType in two Ingresses) the oldest Ingress wins.

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

/// `spec.rules[].http.paths[].pathType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

impl PathType {
    /// The API's spelling; anything else (the apiserver rejects it) is taken as
    /// `ImplementationSpecific`, the controller-defined kind.
    pub fn parse(s: &str) -> PathType {
        match s {
            "Exact" => PathType::Exact,
            "Prefix" => PathType::Prefix,
            _ => PathType::ImplementationSpecific,
        }
    }
}

/// Where a location sends a request.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// An upstream by ingress-nginx's name for it (`namespace-service-port`).
    Upstream(String),
    /// The controller's built-in default backend: nginx's 404 page.
    DefaultBackend,
}

/// One HTTP path of an Ingress rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    pub path: String,
    pub path_type: PathType,
    pub target: Target,
}

/// One rule: a host (`None` = every host) and its paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub host: Option<String>,
    pub paths: Vec<PathRule>,
}

/// An Ingress as the router needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngressRules {
    /// `namespace/name`.
    pub key: String,
    /// `metadata.creationTimestamp` (RFC 3339 sorts as text).
    pub created: String,
    pub default_backend: Option<Target>,
    pub rules: Vec<Rule>,
}

/// How a location matches (`location = p` or `location p`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    Exact,
    Prefix,
}

/// An nginx location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: String,
    pub kind: Match,
    /// The rule's pathType (two locations with the same path but different types coexist).
    pub path_type: PathType,
    pub target: Target,
    /// The Ingress it came from (`namespace/name`), empty for the built-in root.
    pub ingress: String,
}

/// An nginx server block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The rule host, or `_` for the catch-all server.
    pub name: String,
    pub locations: Vec<Location>,
}

/// The catch-all server's name (ingress-nginx `defServerName`).
pub const DEFAULT_SERVER: &str = "_";

/// The whole routing configuration, servers by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub servers: BTreeMap<String, Server>,
}

/// A request's route: the server and location that answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed<'a> {
    pub server: &'a Server,
    pub location: &'a Location,
}

fn root(target: Target, ingress: &str) -> Location {
    Location {
        path: "/".into(),
        kind: Match::Prefix,
        path_type: PathType::Prefix,
        target,
        ingress: ingress.to_owned(),
    }
}

impl Routes {
    /// Builds servers and locations from Ingresses (any order: they are sorted oldest
    /// first, then by namespace/name, so the oldest wins a conflict).
    pub fn build(mut ingresses: Vec<IngressRules>) -> Routes {
        ingresses.sort_by(|a, b| (&a.created, &a.key).cmp(&(&b.created, &b.key)));
        let mut servers: BTreeMap<String, Server> = BTreeMap::new();
        let mut default_set = false;
        servers.insert(
            DEFAULT_SERVER.into(),
            Server {
                name: DEFAULT_SERVER.into(),
                locations: vec![root(Target::DefaultBackend, "")],
            },
        );
        // Rule paths per server before the Prefix expansion: (path, type, target, ingress).
        let mut raw: BTreeMap<String, Vec<(PathRule, String)>> = BTreeMap::new();
        for ing in &ingresses {
            // The oldest Ingress with a defaultBackend serves the catch-all server's root.
            if let (Some(t), false) = (&ing.default_backend, default_set) {
                if let Some(first) = servers
                    .get_mut(DEFAULT_SERVER)
                    .and_then(|s| s.locations.first_mut())
                {
                    *first = root(t.clone(), &ing.key);
                }
                default_set = true;
            }
            for rule in &ing.rules {
                let name = rule
                    .host
                    .as_deref()
                    .filter(|h| !h.is_empty())
                    .unwrap_or(DEFAULT_SERVER)
                    .to_ascii_lowercase();
                servers.entry(name.clone()).or_insert_with(|| Server {
                    name: name.clone(),
                    locations: vec![root(
                        ing.default_backend
                            .clone()
                            .unwrap_or(Target::DefaultBackend),
                        &ing.key,
                    )],
                });
                let paths = raw.entry(name).or_default();
                for p in &rule.paths {
                    let path = if p.path.is_empty() {
                        "/".to_owned()
                    } else {
                        p.path.clone()
                    };
                    let taken = paths
                        .iter()
                        .any(|(q, _)| q.path == path && q.path_type == p.path_type);
                    if taken {
                        // Same host, path and type in an older Ingress: that one wins.
                        continue;
                    }
                    paths.push((
                        PathRule {
                            path,
                            path_type: p.path_type,
                            target: p.target.clone(),
                        },
                        ing.key.clone(),
                    ));
                }
            }
        }
        for (name, paths) in raw {
            let Some(server) = servers.get_mut(&name) else {
                continue;
            };
            let exact: Vec<&str> = paths
                .iter()
                .filter(|(p, _)| p.path_type == PathType::Exact)
                .map(|(p, _)| p.path.as_str())
                .collect();
            for (p, ing) in &paths {
                let loc = |path: &str, kind| Location {
                    path: path.to_owned(),
                    kind,
                    path_type: p.path_type,
                    target: p.target.clone(),
                    ingress: ing.clone(),
                };
                if p.path == "/" && p.path_type != PathType::Exact {
                    // A rule's own `/` replaces the built-in root.
                    if let Some(first) = server.locations.first_mut() {
                        *first = loc("/", Match::Prefix);
                    }
                    continue;
                }
                match p.path_type {
                    PathType::Exact => server.locations.push(loc(&p.path, Match::Exact)),
                    PathType::ImplementationSpecific => {
                        server.locations.push(loc(&p.path, Match::Prefix))
                    }
                    PathType::Prefix => {
                        let normalised = if p.path.ends_with('/') {
                            p.path.clone()
                        } else {
                            format!("{}/", p.path)
                        };
                        server.locations.push(loc(&normalised, Match::Prefix));
                        if !exact.contains(&p.path.as_str()) {
                            server.locations.push(loc(&p.path, Match::Exact));
                        }
                    }
                }
            }
        }
        Routes { servers }
    }

    /// The server nginx picks for a Host header.
    pub fn server_for(&self, host_header: &str) -> &Server {
        let host = strip_port(host_header).to_ascii_lowercase();
        if host != DEFAULT_SERVER {
            if let Some(s) = self.servers.get(&host) {
                return s;
            }
        }
        let wildcard = self.servers.values().find(|s| {
            s.name
                .strip_prefix("*.")
                .is_some_and(|d| wildcard_matches(d, &host))
        });
        match wildcard.or_else(|| self.servers.get(DEFAULT_SERVER)) {
            Some(s) => s,
            None => &FALLBACK,
        }
    }

    /// The server and location that answer `path` (the URI path, no query) for `host`.
    pub fn route(&self, host_header: &str, path: &str) -> Routed<'_> {
        let server = self.server_for(host_header);
        let exact = server
            .locations
            .iter()
            .find(|l| l.kind == Match::Exact && l.path == path);
        let prefix = || {
            server
                .locations
                .iter()
                .filter(|l| l.kind == Match::Prefix && path.starts_with(l.path.as_str()))
                .max_by_key(|l| l.path.len())
        };
        // `build` puts the root first in every server; a hand-made one may lack it.
        let location = exact
            .or_else(prefix)
            .or_else(|| server.locations.first())
            .unwrap_or(&FALLBACK.locations[0]);
        Routed { server, location }
    }
}

/// The server answering when there is none at all (a `Routes` not made by `build`).
static FALLBACK: std::sync::LazyLock<Server> = std::sync::LazyLock::new(|| Server {
    name: DEFAULT_SERVER.into(),
    locations: vec![root(Target::DefaultBackend, "")],
});

/// `server_name ~^(?<subdomain>[\w-]+)\.domain$`: exactly one more label of word characters
/// or hyphens.
fn wildcard_matches(domain: &str, host: &str) -> bool {
    host.strip_suffix(domain)
        .and_then(|h| h.strip_suffix('.'))
        .is_some_and(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
}

/// nginx's `$host`: the Host header without a port.
pub fn strip_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Round robin over an upstream's endpoints, one cursor per upstream (ingress-nginx's Lua
/// `round_robin` balancer keeps one per backend). Deterministic: every cursor starts at the
/// first endpoint, where real nginx starts each worker's at a random one.
pub fn round_robin(
    cursors: &mut BTreeMap<String, usize>,
    upstream: &str,
    endpoints: &[SocketAddrV4],
) -> Option<SocketAddrV4> {
    if endpoints.is_empty() {
        return None;
    }
    let c = cursors.entry(upstream.to_owned()).or_insert(0);
    let pick = endpoints[*c % endpoints.len()];
    *c = (*c + 1) % endpoints.len();
    Some(pick)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(s: &str) -> Target {
        Target::Upstream(s.into())
    }

    fn ing(key: &str, created: &str, rules: Vec<Rule>) -> IngressRules {
        IngressRules {
            key: key.into(),
            created: created.into(),
            default_backend: None,
            rules,
        }
    }

    fn rule(host: Option<&str>, paths: &[(&str, PathType, &str)]) -> Rule {
        Rule {
            host: host.map(str::to_owned),
            paths: paths
                .iter()
                .map(|(p, t, u)| PathRule {
                    path: (*p).into(),
                    path_type: *t,
                    target: up(u),
                })
                .collect(),
        }
    }

    fn pick(r: &Routes, host: &str, path: &str) -> Target {
        r.route(host, path).location.target.clone()
    }

    const T0: &str = "2020-10-27T10:00:00Z";
    const T1: &str = "2020-10-27T10:05:00Z";
    use PathType::*;

    #[test]
    fn host_exact_wildcard_one_label_and_no_host_for_all_8_1() {
        let r = Routes::build(vec![ing(
            "default/a",
            T0,
            vec![
                rule(Some("foo.bar.com"), &[("/", Prefix, "exact")]),
                rule(Some("*.foo.com"), &[("/", Prefix, "wild")]),
                rule(None, &[("/", Prefix, "any")]),
            ],
        )]);
        assert_eq!(pick(&r, "foo.bar.com", "/"), up("exact"));
        assert_eq!(pick(&r, "FOO.bar.com:8080", "/x"), up("exact"));
        assert_eq!(pick(&r, "bar.foo.com", "/"), up("wild"));
        assert_eq!(pick(&r, "baz.bar.foo.com", "/"), up("any"));
        assert_eq!(pick(&r, "foo.com", "/"), up("any"));
        assert_eq!(pick(&r, "10.0.0.1", "/"), up("any"));
    }

    #[test]
    fn unknown_host_without_catch_all_rule_is_the_default_backend_8_8() {
        let r = Routes::build(vec![ing(
            "default/a",
            T0,
            vec![rule(Some("www1.atguigu.com"), &[("/", Prefix, "svc-1")])],
        )]);
        assert_eq!(pick(&r, "www1.atguigu.com", "/hostname.html"), up("svc-1"));
        assert_eq!(pick(&r, "www3.atguigu.com", "/"), Target::DefaultBackend);
    }

    #[test]
    fn prefix_is_element_wise_exact_is_exact_8_2_8_5() {
        let r = Routes::build(vec![ing(
            "default/a",
            T0,
            vec![rule(
                Some("h"),
                &[("/foo", Prefix, "foo"), ("/bar", Exact, "bar")],
            )],
        )]);
        assert_eq!(pick(&r, "h", "/foo"), up("foo"));
        assert_eq!(pick(&r, "h", "/foo/"), up("foo"));
        assert_eq!(pick(&r, "h", "/foo/baz"), up("foo"));
        assert_eq!(pick(&r, "h", "/foobar"), Target::DefaultBackend);
        assert_eq!(pick(&r, "h", "/bar"), up("bar"));
        assert_eq!(pick(&r, "h", "/bar/"), Target::DefaultBackend);
        assert_eq!(pick(&r, "h", "/Bar"), Target::DefaultBackend);
    }

    #[test]
    fn implementation_specific_is_a_plain_nginx_prefix_8_5() {
        let r = Routes::build(vec![ing(
            "default/a",
            T0,
            vec![rule(Some("h"), &[("/foo", ImplementationSpecific, "is")])],
        )]);
        assert_eq!(pick(&r, "h", "/foobar"), up("is"));
        assert_eq!(pick(&r, "h", "/fo"), Target::DefaultBackend);
    }

    #[test]
    fn longest_path_wins_and_exact_beats_prefix_8_3() {
        let r = Routes::build(vec![ing(
            "default/a",
            T0,
            vec![rule(
                Some("h"),
                &[
                    ("/", Prefix, "root"),
                    ("/aaa", Prefix, "aaa"),
                    ("/aaa/bbb", Prefix, "bbb"),
                    ("/aaa/bbb", Exact, "exact"),
                ],
            )],
        )]);
        assert_eq!(pick(&r, "h", "/aaa/bbb"), up("exact"));
        assert_eq!(pick(&r, "h", "/aaa/bbb/c"), up("bbb"));
        assert_eq!(pick(&r, "h", "/aaa/ccc"), up("aaa"));
        assert_eq!(pick(&r, "h", "/ccc"), up("root"));
    }

    #[test]
    fn oldest_ingress_wins_a_conflict_8_6() {
        let newer = ing(
            "default/a-newer",
            T1,
            vec![rule(
                Some("h"),
                &[("/", Prefix, "new"), ("/x", Exact, "new")],
            )],
        );
        let older = ing(
            "zzz/older",
            T0,
            vec![rule(
                Some("h"),
                &[("/", Prefix, "old"), ("/x", Prefix, "old")],
            )],
        );
        let r = Routes::build(vec![newer, older]);
        assert_eq!(pick(&r, "h", "/"), up("old"));
        // Different pathTypes do not conflict: the newer Exact `/x` still serves `/x`.
        assert_eq!(pick(&r, "h", "/x"), up("new"));
        assert_eq!(pick(&r, "h", "/x/y"), up("old"));
        assert_eq!(r.route("h", "/").location.ingress, "zzz/older");
    }

    #[test]
    fn ingress_default_backend_serves_its_servers_root_and_the_catch_all() {
        let mut a = ing(
            "default/a",
            T0,
            vec![rule(Some("h"), &[("/app", Prefix, "app")])],
        );
        a.default_backend = Some(up("fallback"));
        let r = Routes::build(vec![a]);
        assert_eq!(pick(&r, "h", "/other"), up("fallback"));
        assert_eq!(pick(&r, "nope", "/"), up("fallback"));
    }

    #[test]
    fn round_robin_cycles_per_upstream() {
        let eps: Vec<SocketAddrV4> = vec![
            "10.0.0.1:80".parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        ];
        let mut c = BTreeMap::new();
        let got: Vec<_> = (0..3)
            .filter_map(|_| round_robin(&mut c, "a", &eps))
            .collect();
        assert_eq!(got, vec![eps[0], eps[1], eps[0]]);
        assert_eq!(round_robin(&mut c, "b", &eps), Some(eps[0]));
        assert_eq!(round_robin(&mut c, "c", &[]), None);
    }
}
