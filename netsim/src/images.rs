//! The images the simulated container runtime knows. An image not listed here does not
//! exist in the simulated registry: pods using it stay in ErrImagePull / ImagePullBackOff,
//! as they would with a typo on a real cluster.
//!
//! To add an image: add a row to `CATALOG` (repository without tag, whether any tag exists or
//! only the listed ones, compressed size, and how it reacts to SIGTERM). What the image
//! serves on the network is the data-path's business (`workloads`).

use std::borrow::Cow;

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
    /// What the image's own command does with no command or args in the pod: `None` for a
    /// server that runs until stopped, `Some(code)` for a shell or tool that exits at once
    /// (busybox's `sh` with no terminal exits 0; `curl` with no URL exits 2).
    pub default_exit: Option<i32>,
}

pub static CATALOG: &[ImageInfo] = &[
    ImageInfo {
        repository: "wangyanglinux/myapp",
        tags: &["v1", "v2", "v3", "v4"],
        size_bytes: 15_504_521,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "nginx",
        tags: &[],
        size_bytes: 67_250_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "busybox",
        tags: &[],
        size_bytes: 2_158_000,
        stops_on_sigterm: false,
        default_exit: Some(0),
    },
    ImageInfo {
        repository: "alpine",
        tags: &[],
        size_bytes: 3_640_000,
        stops_on_sigterm: false,
        default_exit: Some(0),
    },
    ImageInfo {
        repository: "curlimages/curl",
        tags: &[],
        size_bytes: 11_020_000,
        stops_on_sigterm: false,
        default_exit: Some(2),
    },
    ImageInfo {
        repository: "nicolaka/netshoot",
        tags: &[],
        size_bytes: 209_700_000,
        stops_on_sigterm: false,
        default_exit: Some(0),
    },
    ImageInfo {
        repository: "registry.k8s.io/echoserver",
        tags: &[],
        size_bytes: 46_310_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "hashicorp/http-echo",
        tags: &[],
        size_bytes: 6_970_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/coredns/coredns",
        tags: &[],
        size_bytes: 18_562_039,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-proxy",
        tags: &[],
        size_bytes: 30_900_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/etcd",
        tags: &[],
        size_bytes: 56_900_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-apiserver",
        tags: &[],
        size_bytes: 28_000_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-controller-manager",
        tags: &[],
        size_bytes: 26_000_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/kube-scheduler",
        tags: &[],
        size_bytes: 20_000_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/pause",
        tags: &[],
        size_bytes: 320_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
    ImageInfo {
        repository: "registry.k8s.io/ingress-nginx/controller",
        tags: &[],
        size_bytes: 105_000_000,
        stops_on_sigterm: true,
        default_exit: None,
    },
];

/// What a started container does, as far as the simulation models processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Runs until stopped (servers, `sleep infinity`, loops, anything not understood).
    Forever,
    /// Exits by itself after `after_ms` with `code`.
    Exits { after_ms: i64, code: i32 },
}

/// How long a process that "exits at once" takes: long enough to be seen Running by the
/// kubelet, as a real container's first status usually is.
const QUICK_MS: i64 = 100;

/// What a container with this image, `command` and `args` does once started. The model is
/// deliberately small: a simple command line or a `sh -c` script of simple commands joined
/// by `;` or `&&` (`sleep N`, `sleep infinity`, `true`, `false`, `exit N`, `echo` and a few
/// other one-shot commands) is understood; anything else — loops, pipes, programs this
/// simulator does not know — is taken to run until stopped.
pub fn run_of(image: &str, command: &[String], args: &[String]) -> Run {
    let argv: Vec<&str> = command.iter().chain(args).map(String::as_str).collect();
    if argv.is_empty() {
        return match lookup(image).and_then(|i| i.default_exit) {
            Some(code) => Run::Exits {
                after_ms: QUICK_MS,
                code,
            },
            None => Run::Forever,
        };
    }
    let shell = matches!(
        argv[0].rsplit('/').next(),
        Some("sh" | "bash" | "ash" | "zsh")
    );
    if shell && argv.get(1) == Some(&"-c") {
        return argv
            .get(2)
            .map_or(Run::Forever, |script| run_script(script));
    }
    if shell && argv.len() == 1 {
        // A shell without a terminal reads an empty stdin and exits.
        return Run::Exits {
            after_ms: QUICK_MS,
            code: 0,
        };
    }
    run_simple(&argv)
}

/// A `sh -c` script: simple commands joined by `;` or `&&`, run in order (a failure ends
/// its `&&` chain; `exit` ends the script).
fn run_script(script: &str) -> Run {
    if ["while ", "for ", "until ", "|", " & "]
        .iter()
        .any(|k| script.contains(k))
        || script.trim_end().ends_with('&')
    {
        return Run::Forever;
    }
    let mut total = 0i64;
    let mut code = 0;
    for statement in script.split(';') {
        for part in statement.split("&&") {
            let Ok(words) = shell_words::split(part) else {
                return Run::Forever;
            };
            let argv: Vec<&str> = words.iter().map(String::as_str).collect();
            let Some(&first) = argv.first() else {
                continue;
            };
            if first == "exit" {
                let code = argv.get(1).and_then(|c| c.parse().ok()).unwrap_or(code);
                return Run::Exits {
                    after_ms: total.max(QUICK_MS),
                    code,
                };
            }
            match run_simple(&argv) {
                Run::Forever => return Run::Forever,
                Run::Exits { after_ms, code: c } => {
                    if after_ms > QUICK_MS {
                        total += after_ms;
                    }
                    code = c;
                }
            }
            if code != 0 {
                break;
            }
        }
    }
    Run::Exits {
        after_ms: total.max(QUICK_MS),
        code,
    }
}

/// One simple command.
fn run_simple(argv: &[&str]) -> Run {
    let quick = |code| Run::Exits {
        after_ms: QUICK_MS,
        code,
    };
    match argv[0].rsplit('/').next().unwrap_or_default() {
        "sleep" => match argv.get(1).copied() {
            Some("infinity") | None => Run::Forever,
            Some(d) => parse_duration_ms(d).map_or(quick(1), |ms| Run::Exits {
                after_ms: ms.max(QUICK_MS),
                code: 0,
            }),
        },
        "true" | ":" => quick(0),
        "false" => quick(1),
        "exit" => quick(argv.get(1).and_then(|c| c.parse().ok()).unwrap_or(0)),
        "echo" | "printf" | "date" | "hostname" | "env" | "printenv" | "ls" | "pwd" | "whoami"
        | "id" | "uname" | "cat" => quick(0),
        _ => Run::Forever,
    }
}

/// `sleep`'s argument: a number with an optional s/m/h/d suffix.
fn parse_duration_ms(d: &str) -> Option<i64> {
    let (num, unit) = match d.strip_suffix(['s', 'm', 'h', 'd']) {
        Some(n) => (n, &d[n.len()..]),
        None => (d, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let scale = match unit {
        "m" => 60_000.0,
        "h" => 3_600_000.0,
        "d" => 86_400_000.0,
        _ => 1_000.0,
    };
    (n >= 0.0 && n.is_finite()).then_some((n * scale) as i64)
}

/// Splits `repo[:tag][@digest]` and strips Docker Hub's implicit prefixes. Borrowed from
/// `image` where it can be: the kubelet asks this several times for every pod.
pub fn normalise(image: &str) -> (Cow<'_, str>, &str) {
    let no_digest = image.split('@').next().unwrap_or(image);
    let (repo, tag) = match no_digest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (no_digest, "latest"),
    };
    let repo = repo.strip_prefix("docker.io/").unwrap_or(repo);
    let repo = repo.strip_prefix("library/").unwrap_or(repo);
    let repo = match repo.strip_prefix("k8s.gcr.io/") {
        Some(r) => Cow::Owned(format!("registry.k8s.io/{r}")),
        None => Cow::Borrowed(repo),
    };
    (repo, tag)
}

/// The catalog entry for an image reference, if that image exists.
pub fn lookup(image: &str) -> Option<&'static ImageInfo> {
    let (repo, tag) = normalise(image);
    CATALOG
        .iter()
        .find(|i| i.repository == repo && (i.tags.is_empty() || i.tags.contains(&tag)))
}

/// The fully-qualified name the runtime reports (`docker.io/wangyanglinux/myapp:v2`).
pub fn qualified(image: &str) -> String {
    let (repo, tag) = normalise(image);
    let registry = if repo.split('/').next().is_some_and(|h| h.contains('.')) {
        ""
    } else if repo.contains('/') {
        "docker.io/"
    } else {
        "docker.io/library/"
    };
    // Pushed, not formatted: this runs for each container start and image check.
    let mut q = String::with_capacity(registry.len() + repo.len() + 1 + tag.len());
    for part in [registry, &repo, ":", tag] {
        q.push_str(part);
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(image: &str, command: &[&str], args: &[&str]) -> Run {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        run_of(image, &own(command), &own(args))
    }

    #[test]
    fn what_containers_do_once_started() {
        let exits = |after_ms, code| Run::Exits { after_ms, code };
        // Images' own commands: servers run, shells and tools exit.
        assert_eq!(run("nginx", &[], &[]), Run::Forever);
        assert_eq!(run("wangyanglinux/myapp:v2", &[], &[]), Run::Forever);
        assert_eq!(run("busybox", &[], &[]), exits(100, 0));
        assert_eq!(run("curlimages/curl", &[], &[]), exits(100, 2));
        // Command lines.
        assert_eq!(run("busybox", &["sleep", "infinity"], &[]), Run::Forever);
        assert_eq!(run("busybox", &["sleep", "3600"], &[]), exits(3_600_000, 0));
        assert_eq!(run("busybox", &["sleep"], &["1.5m"]), exits(90_000, 0));
        assert_eq!(run("busybox", &["false"], &[]), exits(100, 1));
        assert_eq!(run("busybox", &["/bin/sh"], &[]), exits(100, 0));
        assert_eq!(
            run("busybox", &["sh", "-c", "echo hi; sleep 10; exit 3"], &[]),
            exits(10_000, 3)
        );
        assert_eq!(
            run("busybox", &["sh", "-c"], &["false && sleep 30"]),
            exits(100, 1)
        );
        assert_eq!(
            run(
                "busybox",
                &["sh", "-c", "while true; do sleep 1; done"],
                &[]
            ),
            Run::Forever
        );
        assert_eq!(
            run("busybox", &["tail", "-f", "/dev/null"], &[]),
            Run::Forever
        );
        assert_eq!(
            run("nginx", &["nginx", "-g", "daemon off;"], &[]),
            Run::Forever
        );
    }

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
