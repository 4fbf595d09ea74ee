//! The ingress-nginx controller model, as data: which Ingresses a controller pod serves (its
//! flags and the IngressClasses), the routes and upstreams it builds from the informer
//! cache's objects, and the address it publishes into their status. Plain JSON objects in,
//! plain data out; the socket side lives in `net::ingress`, the status writer in
//! `cluster::ingress`.
//!
//! Upstreams are endpoint pod `IP:port` from the EndpointSlices (ingress-nginx does not go
//! through the ClusterIP unless `service-upstream` is set, which is not modelled).

pub mod route;

use std::collections::BTreeMap;
use std::net::SocketAddrV4;

use apiserver::json::At;
use serde_json::Value;

use crate::cluster::cache::str_at;
use route::{IngressRules, PathRule, PathType, Routes, Rule, Target};

/// The controller image; any tag.
pub const IMAGE: &str = "registry.k8s.io/ingress-nginx/controller";

/// The legacy class annotation, still honoured by ingress-nginx.
const CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The controller's command-line flags that change what it serves or publishes, with
/// upstream's defaults (pkg/flags/flags.go).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flags {
    /// `--ingress-class` (default `nginx`): the annotation value it accepts, and the
    /// IngressClass name with `--ingress-class-by-name`.
    pub ingress_class: String,
    /// `--controller-class` (default `k8s.io/ingress-nginx`): IngressClasses whose
    /// `spec.controller` is this are its own.
    pub controller_class: String,
    /// `--watch-ingress-without-class` (default false).
    pub watch_without_class: bool,
    /// `--ingress-class-by-name` (default false).
    pub class_by_name: bool,
    /// `--publish-service=ns/name`.
    pub publish_service: Option<String>,
    /// `--publish-status-address=a,b`.
    pub publish_status_address: Option<String>,
    /// `--update-status` (default true).
    pub update_status: bool,
    /// `--report-node-internal-ip-address` (default false).
    pub node_internal_ip: bool,
}

impl Default for Flags {
    fn default() -> Self {
        Flags {
            ingress_class: "nginx".into(),
            controller_class: "k8s.io/ingress-nginx".into(),
            watch_without_class: false,
            class_by_name: false,
            publish_service: None,
            publish_status_address: None,
            update_status: true,
            node_internal_ip: false,
        }
    }
}

fn parse_bool(v: Option<&str>) -> bool {
    !matches!(v, Some("false" | "0" | "f" | "F" | "False" | "FALSE"))
}

impl Flags {
    /// Parses the container's (already `$(VAR)`-expanded) command and args as Go's pflag
    /// does: `--name=value`, `--name value`, a bool as `--name` or `--name=false`. Unknown
    /// flags are ignored here (the real binary would refuse to start; that is not modelled).
    pub fn parse(argv: &[String]) -> Flags {
        let mut f = Flags::default();
        let mut i = 0;
        while i < argv.len() {
            let a = argv[i].as_str();
            i += 1;
            let Some(flag) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
                continue;
            };
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (flag, None),
            };
            let bools = [
                "watch-ingress-without-class",
                "ingress-class-by-name",
                "update-status",
                "report-node-internal-ip-address",
            ];
            let value = if bools.contains(&name) {
                inline
            } else {
                match inline {
                    Some(v) => Some(v),
                    None => {
                        let v = argv.get(i).cloned();
                        i += 1;
                        v
                    }
                }
            };
            let v = value.as_deref();
            match name {
                "ingress-class" => f.ingress_class = v.unwrap_or_default().to_owned(),
                "controller-class" => f.controller_class = v.unwrap_or_default().to_owned(),
                "publish-service" => f.publish_service = v.map(str::to_owned),
                "publish-status-address" => f.publish_status_address = v.map(str::to_owned),
                "watch-ingress-without-class" => f.watch_without_class = parse_bool(v),
                "ingress-class-by-name" => f.class_by_name = parse_bool(v),
                "update-status" => f.update_status = parse_bool(v),
                "report-node-internal-ip-address" => f.node_internal_ip = parse_bool(v),
                _ => {}
            }
        }
        f
    }

    /// Whether an IngressClass belongs to this controller (what its IngressClass informer
    /// keeps: matching `spec.controller`, or the name with `--ingress-class-by-name`).
    fn owns_class(&self, class: &Value) -> bool {
        str_at(class, "/spec/controller") == Some(self.controller_class.as_str())
            || (self.class_by_name
                && str_at(class, "/metadata/name") == Some(self.ingress_class.as_str()))
    }

    /// Whether this controller serves `ing`, as ingress-nginx's store decides
    /// (`GetIngressClass`): `spec.ingressClassName` first (it must name an IngressClass of
    /// ours; a name set but not ours is not served whatever the annotation says), then the
    /// `kubernetes.io/ingress.class` annotation (it must equal `--ingress-class`), else
    /// only with `--watch-ingress-without-class`.
    pub fn serves<'a>(&self, ing: &Value, classes: impl IntoIterator<Item = &'a Value>) -> bool {
        if let Some(name) = str_at(ing, "/spec/ingressClassName") {
            return classes
                .into_iter()
                .any(|c| str_at(c, "/metadata/name") == Some(name) && self.owns_class(c));
        }
        if let Some(a) = ing
            .at("/metadata/annotations")
            .and_then(|m| m.get(CLASS_ANNOTATION))
            .and_then(Value::as_str)
        {
            return !a.is_empty() && a == self.ingress_class;
        }
        self.watch_without_class
    }
}

/// A pod's container `$(VAR)` references expanded from its env, as the kubelet expands
/// command and args (`$$` escapes; an unknown variable is left as written).
pub fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(j) => {
                    let name = &body[..j];
                    match env.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &body[j + 1..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// A container's environment as far as `$(VAR)` expansion needs it: literal values and
/// the downward API fields a controller manifest uses.
fn container_env(pod: &Value, c: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
        let Some(name) = str_at(e, "/name") else {
            continue;
        };
        let value = match str_at(e, "/value") {
            Some(v) => Some(v.to_owned()),
            None => str_at(e, "/valueFrom/fieldRef/fieldPath").and_then(|p| {
                let ptr = match p {
                    "metadata.namespace" => "/metadata/namespace",
                    "metadata.name" => "/metadata/name",
                    "spec.nodeName" => "/spec/nodeName",
                    "status.podIP" => "/status/podIP",
                    _ => return None,
                };
                str_at(pod, ptr).map(str::to_owned)
            }),
        };
        if let Some(v) = value {
            env.insert(name.to_owned(), v);
        }
    }
    env
}

/// The controller flags of `pod`, if one of its containers runs the ingress-nginx image.
pub fn controller_flags(pod: &Value) -> Option<Flags> {
    let c = pod
        .at("/spec/containers")
        .and_then(Value::as_array)?
        .iter()
        .find(|c| str_at(c, "/image").is_some_and(|i| crate::images::normalise(i).0 == IMAGE))?;
    let env = container_env(pod, c);
    let argv: Vec<String> = ["command", "args"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_array))
        .flatten()
        .filter_map(Value::as_str)
        .map(|a| expand(a, &env))
        .collect();
    Some(Flags::parse(&argv))
}

/// What a controller pod serves: its routes and the endpoints of every upstream they name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Controller {
    pub routes: Routes,
    /// Upstream name → ready endpoints (empty: the Service has none, nginx answers 503).
    pub upstreams: BTreeMap<String, Vec<SocketAddrV4>>,
    /// The container port nginx listens on for HTTP.
    pub http_port: u16,
}

/// The objects a controller reads from its informers.
pub struct Objects<'a> {
    pub ingresses: Vec<&'a Value>,
    pub classes: Vec<&'a Value>,
    pub services: Vec<&'a Value>,
    pub slices: Vec<&'a Value>,
}

/// ingress-nginx's upstream name for a Service backend: `namespace-name-port`.
fn upstream_name(ns: &str, backend: &Value) -> Option<String> {
    let svc = str_at(backend, "/service/name")?;
    let port = match backend.at("/service/port/number").and_then(Value::as_u64) {
        Some(n) => n.to_string(),
        None => str_at(backend, "/service/port/name")?.to_owned(),
    };
    Some(format!("{ns}-{svc}-{port}"))
}

/// A Service backend's ready endpoints: the Service port the backend names, then every
/// EndpointSlice port of the same name, each ready address with that port.
fn endpoints(ns: &str, backend: &Value, o: &Objects<'_>) -> Vec<SocketAddrV4> {
    let Some(name) = str_at(backend, "/service/name") else {
        return Vec::new();
    };
    let Some(svc) = o.services.iter().find(|s| {
        str_at(s, "/metadata/namespace") == Some(ns) && str_at(s, "/metadata/name") == Some(name)
    }) else {
        return Vec::new();
    };
    let number = backend.at("/service/port/number").and_then(Value::as_u64);
    let pname = str_at(backend, "/service/port/name");
    let Some(sp) = svc
        .at("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|p| match number {
            Some(n) => p.get("port").and_then(Value::as_u64) == Some(n),
            None => str_at(p, "/name") == pname,
        })
    else {
        return Vec::new();
    };
    let sp_name = str_at(sp, "/name").unwrap_or_default();
    let mut out = Vec::new();
    for sl in o.slices.iter().filter(|sl| {
        str_at(sl, "/metadata/namespace") == Some(ns)
            && str_at(sl, "/metadata/labels/kubernetes.io~1service-name") == Some(name)
    }) {
        let Some(port) = sl
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| str_at(p, "/name").unwrap_or_default() == sp_name)
            .and_then(|p| p.get("port").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
        else {
            continue;
        };
        for e in sl
            .get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if e.at("/conditions/ready") == Some(&Value::Bool(false)) {
                continue;
            }
            for a in e
                .get("addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(ip) = a.as_str().and_then(|s| s.parse().ok()) {
                    let ep = SocketAddrV4::new(ip, port);
                    if !out.contains(&ep) {
                        out.push(ep);
                    }
                }
            }
        }
    }
    out
}

impl Controller {
    /// The configuration a controller with `flags` builds from its informers' objects.
    pub fn build(flags: &Flags, o: &Objects<'_>) -> Controller {
        let mut upstreams = BTreeMap::new();
        let mut target = |ns: &str, backend: Option<&Value>| -> Option<Target> {
            let b = backend?;
            let Some(name) = upstream_name(ns, b) else {
                // A resource backend (not a Service): not modelled, the default backend.
                return Some(Target::DefaultBackend);
            };
            upstreams
                .entry(name.clone())
                .or_insert_with(|| endpoints(ns, b, o));
            Some(Target::Upstream(name))
        };
        let mut all = Vec::new();
        for ing in o
            .ingresses
            .iter()
            .filter(|i| flags.serves(i, o.classes.iter().copied()))
        {
            let ns = str_at(ing, "/metadata/namespace").unwrap_or("default");
            let rules = ing
                .at("/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| Rule {
                    host: str_at(r, "/host").map(str::to_owned),
                    paths: r
                        .at("/http/paths")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|p| PathRule {
                            path: str_at(p, "/path").unwrap_or("/").to_owned(),
                            path_type: PathType::parse(str_at(p, "/pathType").unwrap_or_default()),
                            target: target(ns, p.get("backend")).unwrap_or(Target::DefaultBackend),
                        })
                        .collect(),
                })
                .collect();
            all.push(IngressRules {
                key: format!("{ns}/{}", str_at(ing, "/metadata/name").unwrap_or_default()),
                created: str_at(ing, "/metadata/creationTimestamp")
                    .unwrap_or_default()
                    .to_owned(),
                default_backend: target(ns, ing.at("/spec/defaultBackend")),
                rules,
            });
        }
        Controller {
            routes: Routes::build(all),
            upstreams,
            http_port: 80,
        }
    }
}

/// The addresses a controller publishes into its Ingresses' `status.loadBalancer.ingress`
/// (ingress-nginx `runningAddresses` / `statusAddressFromService`), sorted by IP:
/// `--publish-status-address`; else the `--publish-service` Service's LoadBalancer
/// ingress (plus externalIPs), its ClusterIP for ClusterIP and NodePort Services (a
/// NodePort Service with externalIPs publishes those); else the node address of every
/// running controller pod (ExternalIP, falling back to InternalIP). `None` when the
/// published Service does not exist (the sync fails and the status is left as it is).
pub fn status_addresses(
    flags: &Flags,
    services: &[&Value],
    controller_nodes: &[&Value],
) -> Option<Vec<Value>> {
    let ip_or_host = |s: &str| {
        if s.parse::<std::net::IpAddr>().is_ok() {
            serde_json::json!({"ip": s})
        } else {
            serde_json::json!({"hostname": s})
        }
    };
    let mut out: Vec<Value> = if let Some(addrs) = &flags.publish_status_address {
        addrs
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(ip_or_host)
            .collect()
    } else if let Some(ps) = &flags.publish_service {
        let (ns, name) = ps.split_once('/').unwrap_or(("default", ps.as_str()));
        let svc = services.iter().find(|s| {
            str_at(s, "/metadata/namespace") == Some(ns)
                && str_at(s, "/metadata/name") == Some(name)
        })?;
        let external: Vec<&str> = svc
            .at("/spec/externalIPs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let cluster_ip = || {
            vec![ip_or_host(
                str_at(svc, "/spec/clusterIP").unwrap_or_default(),
            )]
        };
        match str_at(svc, "/spec/type").unwrap_or("ClusterIP") {
            "ExternalName" => vec![serde_json::json!({
                "hostname": str_at(svc, "/spec/externalName").unwrap_or_default()
            })],
            "ClusterIP" => cluster_ip(),
            "NodePort" if external.is_empty() => cluster_ip(),
            "NodePort" => external.into_iter().map(ip_or_host).collect(),
            _ => {
                let mut v: Vec<Value> = svc
                    .at("/status/loadBalancer/ingress")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| {
                        str_at(i, "/ip")
                            .map(|ip| serde_json::json!({"ip": ip}))
                            .or_else(|| str_at(i, "/hostname").map(ip_or_host))
                    })
                    .collect();
                for ip in external {
                    if !v.iter().any(|x| str_at(x, "/ip") == Some(ip)) {
                        v.push(ip_or_host(ip));
                    }
                }
                v
            }
        }
    } else {
        let mut v: Vec<Value> = Vec::new();
        for node in controller_nodes {
            let addr = |t: &str| {
                node.at("/status/addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .find(|a| str_at(a, "/type") == Some(t))
                    .and_then(|a| str_at(a, "/address"))
                    .filter(|a| !a.is_empty())
            };
            let internal = addr("InternalIP");
            let chosen = if flags.node_internal_ip {
                internal
            } else {
                addr("ExternalIP").or(internal)
            };
            if let Some(a) = chosen.map(ip_or_host) {
                if !v.contains(&a) {
                    v.push(a);
                }
            }
        }
        v
    };
    out.sort_by(|a, b| {
        (str_at(a, "/hostname"), str_at(a, "/ip")).cmp(&(str_at(b, "/hostname"), str_at(b, "/ip")))
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| (*a).to_owned()).collect()
    }

    #[test]
    fn flags_parse_like_pflag_with_upstream_defaults() {
        let f = Flags::parse(&argv(&[
            "/nginx-ingress-controller",
            "--publish-service=ingress-nginx/ingress-nginx-controller",
            "--election-id=ingress-nginx-leader",
            "--controller-class",
            "example.com/x",
            "--watch-ingress-without-class",
        ]));
        assert_eq!(
            f.publish_service.as_deref(),
            Some("ingress-nginx/ingress-nginx-controller")
        );
        assert_eq!(f.controller_class, "example.com/x");
        assert_eq!(f.ingress_class, "nginx");
        assert!(f.watch_without_class && f.update_status);
    }

    #[test]
    fn args_expand_pod_env_like_the_kubelet() {
        let env: BTreeMap<String, String> =
            [("POD_NAMESPACE".to_owned(), "ingress-nginx".to_owned())].into();
        assert_eq!(
            expand("--publish-service=$(POD_NAMESPACE)/c", &env),
            "--publish-service=ingress-nginx/c"
        );
        assert_eq!(
            expand("$$(POD_NAMESPACE) $(NOPE)", &env),
            "$(POD_NAMESPACE) $(NOPE)"
        );
    }

    #[test]
    fn class_by_class_name_then_annotation_then_without_class() {
        let f = Flags::default();
        let ours =
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        let other = json!({"metadata": {"name": "traefik"}, "spec": {"controller": "traefik.io/ingress-controller"}});
        let classes = [&ours, &other];
        let by_name = |n: &str| json!({"metadata": {"name": "a"}, "spec": {"ingressClassName": n}});
        assert!(f.serves(&by_name("nginx"), classes));
        assert!(!f.serves(&by_name("traefik"), classes));
        assert!(!f.serves(&by_name("missing"), classes));
        // Both set (possible for Ingresses stored before the apiserver checked that they
        // agree): ingressClassName decides and the annotation is not looked at.
        let both = |class: &str, v: &str| json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": v}}, "spec": {"ingressClassName": class}});
        assert!(
            !f.serves(&both("traefik", "nginx"), classes),
            "ingressClassName wins"
        );
        assert!(
            f.serves(&both("nginx", "traefik"), classes),
            "ingressClassName wins"
        );
        assert!(!f.serves(&both("missing", "nginx"), classes));
        let ann = |v: &str| json!({"metadata": {"annotations": {"kubernetes.io/ingress.class": v}}, "spec": {}});
        assert!(f.serves(&ann("nginx"), classes));
        assert!(!f.serves(&ann("traefik"), classes));
        assert!(!f.serves(&ann(""), classes));
        let none = json!({"metadata": {"name": "a"}, "spec": {}});
        assert!(!f.serves(&none, classes));
        let watch_all = Flags {
            watch_without_class: true,
            ..Flags::default()
        };
        assert!(watch_all.serves(&none, classes));
    }

    fn svc(ty: &str) -> Value {
        json!({
            "metadata": {"namespace": "ingress-nginx", "name": "c"},
            "spec": {"type": ty, "clusterIP": "10.96.5.5"},
            "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.200", "ipMode": "VIP"}]}}
        })
    }

    #[test]
    fn published_address_follows_the_service_type() {
        let f = Flags {
            publish_service: Some("ingress-nginx/c".into()),
            ..Flags::default()
        };
        let lb = svc("LoadBalancer");
        assert_eq!(
            status_addresses(&f, &[&lb], &[]),
            Some(vec![json!({"ip": "172.18.255.200"})])
        );
        let np = svc("NodePort");
        assert_eq!(
            status_addresses(&f, &[&np], &[]),
            Some(vec![json!({"ip": "10.96.5.5"})])
        );
        assert_eq!(status_addresses(&f, &[], &[]), None);
        let node =
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "172.18.0.3"}]}});
        assert_eq!(
            status_addresses(&Flags::default(), &[], &[&node, &node]),
            Some(vec![json!({"ip": "172.18.0.3"})])
        );
    }

    #[test]
    fn upstreams_are_ready_endpoints_on_the_slice_port_of_the_service_port() {
        let ing = json!({
            "metadata": {"namespace": "default", "name": "i", "creationTimestamp": "2020-10-27T10:00:00Z"},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "h", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}},
                {"path": "/gone", "pathType": "Prefix", "backend": {"service": {"name": "gone", "port": {"number": 80}}}}
            ]}}]}
        });
        let class =
            json!({"metadata": {"name": "nginx"}, "spec": {"controller": "k8s.io/ingress-nginx"}});
        let s = json!({"metadata": {"namespace": "default", "name": "s"}, "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        let sl = json!({
            "metadata": {"namespace": "default", "name": "s-x", "labels": {"kubernetes.io/service-name": "s"}},
            "ports": [{"name": "http", "port": 8080}],
            "endpoints": [
                {"addresses": ["10.244.1.2"], "conditions": {"ready": true}},
                {"addresses": ["10.244.2.2"], "conditions": {"ready": false}}
            ]
        });
        let c = Controller::build(
            &Flags::default(),
            &Objects {
                ingresses: vec![&ing],
                classes: vec![&class],
                services: vec![&s],
                slices: vec![&sl],
            },
        );
        assert_eq!(
            c.upstreams.get("default-s-80"),
            Some(&vec!["10.244.1.2:8080".parse().unwrap()])
        );
        assert_eq!(c.upstreams.get("default-gone-80"), Some(&vec![]));
        assert_eq!(
            c.routes.route("h", "/x").location.target,
            Target::Upstream("default-s-80".into())
        );
    }
}
