//! The resource types this apiserver serves: names, groups, scope, short names.
//! One table drives discovery, REST routing, kubectl's name resolution and storage keys.

/// One served resource (a row of `kubectl api-resources`).
#[derive(Debug, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    /// Categories (`all` is what `kubectl get all` expands to).
    pub categories: &'static [&'static str],
}

const ALL: &[&str] = &["all"];

pub static RESOURCES: &[Resource] = &[
    Resource {
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Pod",
        plural: "pods",
        singular: "pod",
        namespaced: true,
        short_names: &["po"],
        categories: ALL,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Service",
        plural: "services",
        singular: "service",
        namespaced: true,
        short_names: &["svc"],
        categories: ALL,
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Endpoints",
        plural: "endpoints",
        singular: "endpoints",
        namespaced: true,
        short_names: &["ep"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Event",
        plural: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        namespaced: true,
        short_names: &["cm"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "ServiceAccount",
        plural: "serviceaccounts",
        singular: "serviceaccount",
        namespaced: true,
        short_names: &["sa"],
        categories: &[],
    },
    Resource {
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        namespaced: true,
        short_names: &[],
        categories: &[],
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "Deployment",
        plural: "deployments",
        singular: "deployment",
        namespaced: true,
        short_names: &["deploy"],
        categories: ALL,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "ReplicaSet",
        plural: "replicasets",
        singular: "replicaset",
        namespaced: true,
        short_names: &["rs"],
        categories: ALL,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "DaemonSet",
        plural: "daemonsets",
        singular: "daemonset",
        namespaced: true,
        short_names: &["ds"],
        categories: ALL,
    },
    Resource {
        group: "apps",
        version: "v1",
        kind: "StatefulSet",
        plural: "statefulsets",
        singular: "statefulset",
        namespaced: true,
        short_names: &["sts"],
        categories: ALL,
    },
    Resource {
        group: "discovery.k8s.io",
        version: "v1",
        kind: "EndpointSlice",
        plural: "endpointslices",
        singular: "endpointslice",
        namespaced: true,
        short_names: &[],
        categories: &[],
    },
    Resource {
        group: "networking.k8s.io",
        version: "v1",
        kind: "Ingress",
        plural: "ingresses",
        singular: "ingress",
        namespaced: true,
        short_names: &["ing"],
        categories: &[],
    },
    Resource {
        group: "networking.k8s.io",
        version: "v1",
        kind: "IngressClass",
        plural: "ingressclasses",
        singular: "ingressclass",
        namespaced: false,
        short_names: &[],
        categories: &[],
    },
    // Stored and listed only: no authorizer reads them (every client is allowed).
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        singular: "clusterrole",
        namespaced: false,
        short_names: &[],
        categories: &[],
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        namespaced: false,
        short_names: &[],
        categories: &[],
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        singular: "role",
        namespaced: true,
        short_names: &[],
        categories: &[],
    },
    Resource {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        singular: "rolebinding",
        namespaced: true,
        short_names: &[],
        categories: &[],
    },
];

/// The order `kubectl get all` prints in (as real kubectl: pods, services, daemonsets,
/// deployments, replicasets, statefulsets).
pub const ALL_ORDER: &[&str] = &[
    "pods",
    "services",
    "daemonsets",
    "deployments",
    "replicasets",
    "statefulsets",
];

impl Resource {
    /// `v1` or `apps/v1`.
    /// `v == self.api_version()`, without building that string.
    pub fn is_api_version(&self, v: &str) -> bool {
        match v.split_once('/') {
            Some((g, ver)) => g == self.group && ver == self.version,
            None => self.group.is_empty() && v == self.version,
        }
    }

    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `pods`, `deployments.apps`: how errors name the resource.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_owned()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `pod`, `deployment.apps`: how kubectl's name printer names the kind.
    pub fn kind_qualified(&self) -> String {
        let k = self.kind.to_lowercase();
        if self.group.is_empty() {
            k
        } else {
            format!("{k}.{}", self.group)
        }
    }

    /// `/api/v1` or `/apis/apps/v1`.
    pub fn group_version_path(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// The REST path of a collection (`ns` None = cluster-wide / all namespaces).
    pub fn collection_path(&self, ns: Option<&str>) -> String {
        match (self.namespaced, ns) {
            (true, Some(ns)) => format!(
                "{}/namespaces/{}/{}",
                self.group_version_path(),
                ns,
                self.plural
            ),
            _ => format!("{}/{}", self.group_version_path(), self.plural),
        }
    }

    /// The storage key prefix of the collection: `pods/` or `pods/default/`.
    pub fn key_prefix(&self, ns: Option<&str>) -> String {
        self.key(ns, "")
    }

    /// The storage key of one object, as kube-apiserver lays out etcd. Built by hand, not
    /// with `format!`: every read and write makes one.
    pub fn key(&self, ns: Option<&str>, name: &str) -> String {
        let storage = self.storage_name();
        let ns = ns.filter(|_| self.namespaced);
        let len = storage.len() + ns.map_or(0, |n| n.len() + 1) + 1 + name.len();
        let mut key = String::with_capacity(len);
        key.push_str(storage);
        key.push('/');
        if let Some(ns) = ns {
            key.push_str(ns);
            key.push('/');
        }
        key.push_str(name);
        key
    }

    /// kube-apiserver stores a few resources under other names (`services/specs/...`);
    /// we keep the plural for every resource except the ones users look for in etcd.
    pub(crate) fn storage_name(&self) -> &'static str {
        match self.plural {
            "services" => "services/specs",
            "endpoints" => "services/endpoints",
            "ingresses" => "ingress",
            "ingressclasses" => "ingressclasses",
            "nodes" => "minions",
            other => other,
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }
}

/// Finds a resource by any name kubectl accepts: plural, singular, short name, kind,
/// and group-qualified forms (`deployments.apps`, `deploy.apps`). Case-insensitive.
pub fn find(name: &str) -> Option<&'static Resource> {
    // Controllers look resources up by plural on every write: that needs no lowering.
    if let Some(r) = RESOURCES.iter().find(|r| r.plural == name) {
        return Some(r);
    }
    find_by_any_name(name)
}

fn find_by_any_name(name: &str) -> Option<&'static Resource> {
    let lower = name.to_ascii_lowercase();
    let (base, group) = match lower.split_once('.') {
        Some((b, g)) => (b.to_owned(), Some(g.to_owned())),
        None => (lower.clone(), None),
    };
    RESOURCES.iter().find(|r| {
        let name_ok = r.plural == base
            || r.singular == base
            || r.kind.eq_ignore_ascii_case(&base)
            || r.short_names.contains(&base.as_str());
        let group_ok = match &group {
            None => true,
            Some(g) => r.group == g || (r.group.is_empty() && g == "core"),
        };
        name_ok && group_ok
    })
}

/// Finds a resource by its REST coordinates.
pub fn by_path(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds a resource by apiVersion and kind, as a manifest names it.
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.api_version() == api_version && r.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plural_shortcut_finds_what_the_full_search_finds() {
        for r in RESOURCES {
            let full = find_by_any_name(r.plural).map(|f| f.plural);
            assert_eq!(full, Some(r.plural));
            assert_eq!(find(r.plural).map(|f| f.plural), full);
        }
    }

    #[test]
    fn kubectl_names_resolve() {
        for (n, plural) in [
            ("po", "pods"),
            ("pod", "pods"),
            ("Pods", "pods"),
            ("svc", "services"),
            ("deploy", "deployments"),
            ("deployments.apps", "deployments"),
            ("rs", "replicasets"),
            ("ep", "endpoints"),
            ("no", "nodes"),
            ("ns", "namespaces"),
            ("ds", "daemonsets"),
            ("sts", "statefulsets"),
            ("endpointslices.discovery.k8s.io", "endpointslices"),
            ("ing", "ingresses"),
            ("clusterrole", "clusterroles"),
            (
                "clusterrolebindings.rbac.authorization.k8s.io",
                "clusterrolebindings",
            ),
            ("Role", "roles"),
            ("rolebinding", "rolebindings"),
            ("sa", "serviceaccounts"),
        ] {
            assert_eq!(find(n).map(|r| r.plural), Some(plural), "{n}");
        }
        assert!(find("pods.apps").is_none());
        assert!(find("widgets").is_none());
    }

    #[test]
    fn paths_and_keys() {
        let d = find("deploy").unwrap();
        assert_eq!(
            d.collection_path(Some("default")),
            "/apis/apps/v1/namespaces/default/deployments"
        );
        assert_eq!(d.key(Some("default"), "web"), "deployments/default/web");
        assert_eq!(d.key_prefix(Some("default")), "deployments/default/");
        assert_eq!(d.key_prefix(None), "deployments/");
        let svc = find("svc").unwrap();
        assert_eq!(
            svc.key(Some("kube-system"), "kube-dns"),
            "services/specs/kube-system/kube-dns"
        );
        let node = find("no").unwrap();
        assert_eq!(
            node.key(Some("ignored"), "k8s-master"),
            "minions/k8s-master"
        );
        assert_eq!(node.key_prefix(None), "minions/");
        assert_eq!(d.qualified(), "deployments.apps");
        assert_eq!(d.kind_qualified(), "deployment.apps");
        let p = find("po").unwrap();
        assert_eq!(p.collection_path(None), "/api/v1/pods");
        assert_eq!(p.kind_qualified(), "pod");
    }
}
