//! The images the simulated container runtime knows. An image not listed here does not
//! exist in the simulated registry: pods using it stay in ErrImagePull / ImagePullBackOff,
//! as they would with a typo on a real cluster.
//!
//! To add an image: add a row to `CATALOG` (repository without tag, whether any tag exists or
//! only the listed ones, compressed size, and how it reacts to SIGTERM). What the image
//! serves on the network is the data-path's business (`workloads`).

/// One known repository.
pub struct ImageInfo {
    /// Normalised repository (`docker.io/library/` stripped).
    pub repository: &'static str,
    /// Tags that exist; empty = any tag.
    pub tags: &'static [&'static str],
    /// Compressed size, for pull time and the `Pulled` event.
    pub size_bytes: u64,
    /// Exits promptly on SIGTERM (servers); otherwise the pod waits out its grace period.
    pub stops_on_sigterm: bool,
}

pub static CATALOG: &[ImageInfo] = &[
    ImageInfo {
        repository: "wangyanglinux/myapp",
        tags: &["v1", "v2", "v3", "v4"],
        size_bytes: 15_504_521,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "nginx",
        tags: &[],
        size_bytes: 67_250_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "busybox",
        tags: &[],
        size_bytes: 2_158_000,
        stops_on_sigterm: false,
    },
    ImageInfo {
        repository: "alpine",
        tags: &[],
        size_bytes: 3_640_000,
        stops_on_sigterm: false,
    },
    ImageInfo {
        repository: "curlimages/curl",
        tags: &[],
        size_bytes: 11_020_000,
        stops_on_sigterm: false,
    },
    ImageInfo {
        repository: "nicolaka/netshoot",
        tags: &[],
        size_bytes: 209_700_000,
        stops_on_sigterm: false,
    },
    ImageInfo {
        repository: "registry.k8s.io/echoserver",
        tags: &[],
        size_bytes: 46_310_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "hashicorp/http-echo",
        tags: &[],
        size_bytes: 6_970_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/coredns/coredns",
        tags: &[],
        size_bytes: 18_562_039,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-proxy",
        tags: &[],
        size_bytes: 30_900_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/etcd",
        tags: &[],
        size_bytes: 56_900_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-apiserver",
        tags: &[],
        size_bytes: 28_000_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-controller-manager",
        tags: &[],
        size_bytes: 26_000_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-scheduler",
        tags: &[],
        size_bytes: 20_000_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/pause",
        tags: &[],
        size_bytes: 320_000,
        stops_on_sigterm: true,
    },
    ImageInfo {
        repository: "registry.k8s.io/ingress-nginx/controller",
        tags: &[],
        size_bytes: 105_000_000,
        stops_on_sigterm: true,
    },
];

/// Splits `repo[:tag][@digest]` and strips Docker Hub's implicit prefixes.
pub fn normalise(image: &str) -> (String, String) {
    let no_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match no_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (no_digest, "latest"),
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    let repo = repo
        .strip_prefix("k8s.gcr.io/")
        .map(|r| format!("registry.k8s.io/{r}"))
        .unwrap_or_else(|| repo.to_owned());
    (repo, tag.to_owned())
}

/// The catalog entry for an image reference, if that image exists.
pub fn lookup(image: &str) -> Option<&'static ImageInfo> {
    let (repo, tag) = normalise(image);
    CATALOG
        .iter()
        .find(|i| i.repository == repo && (i.tags.is_empty() || i.tags.contains(&tag.as_str())))
}

/// The fully-qualified name the runtime reports (`docker.io/wangyanglinux/myapp:v2`).
pub fn qualified(image: &str) -> String {
    let (repo, tag) = normalise(image);
    if repo.contains('.') && repo.split('/').next().is_some_and(|h| h.contains('.')) {
        format!("{repo}:{tag}")
    } else if repo.contains('/') {
        format!("docker.io/{repo}:{tag}")
    } else {
        format!("docker.io/library/{repo}:{tag}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_images_exist_and_typos_do_not() {
        assert!(lookup("wangyanglinux/myapp:v2").is_some());
        assert!(lookup("docker.io/library/nginx:1.25").is_some());
        assert!(lookup("wangyanglinux/myapp:v9").is_none());
        assert!(lookup("wangyanglinux/myap:v2").is_none());
        assert_eq!(
            qualified("wangyanglinux/myapp:v2"),
            "docker.io/wangyanglinux/myapp:v2"
        );
        assert_eq!(qualified("nginx"), "docker.io/library/nginx:latest");
        assert_eq!(
            qualified("registry.k8s.io/pause:3.10"),
            "registry.k8s.io/pause:3.10"
        );
    }
}
