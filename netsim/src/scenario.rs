//! Scenario files: parsing with positions, checking before anything runs, and the runner
//! that prints a transcript like a shell session on a real cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cluster::{ClusterConfig, NodeConfig};
use crate::kubectl::{self, parse_duration_ms};

/// A scenario as written (`deny_unknown_fields`: a typo is an error, not a silent no-op).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub cluster: ClusterSpec,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    pub steps: Vec<Step>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterSpec {
    #[serde(default)]
    pub proxy_mode: Option<String>,
    #[serde(default)]
    pub nodes: Option<Vec<NodeSpec>>,
    /// LoadBalancer address pool `first-last` on the node network, or `none` (EXTERNAL-IP
    /// stays `<pending>`). Default 172.18.255.200-172.18.255.250.
    #[serde(default)]
    pub load_balancer_pool: Option<String>,
    /// RFC 3339 start of the virtual clock (default 2020-10-27T10:00:00Z).
    #[serde(default)]
    pub epoch: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub run: Option<String>,
    #[serde(default)]
    pub sleep: Option<String>,
    #[serde(default)]
    pub on: Option<String>,
    #[serde(default)]
    pub expect: Option<Expect>,
    #[serde(default)]
    pub capture: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub exit: Option<i32>,
    #[serde(default)]
    pub contains: Vec<String>,
    #[serde(default)]
    pub matches: Vec<String>,
}

/// A scenario that failed to load: `file:line:col: what`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct ScenarioError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// Commands a step may run (first word).
pub const COMMANDS: &[&str] = &["kubectl", "echo"];

fn known_command(cmd: &str) -> bool {
    COMMANDS.contains(&cmd) || crate::probes::COMMANDS.contains(&cmd)
}

/// A loaded, checked scenario with where its files live.
pub struct Loaded {
    pub path: PathBuf,
    pub scenario: Scenario,
    /// Line (1-based) of each step, for messages.
    pub step_lines: Vec<usize>,
}

impl Loaded {
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    pub fn cluster_config(&self, seed_override: Option<u64>) -> ClusterConfig {
        let mut c = ClusterConfig {
            seed: seed_override.or(self.scenario.seed).unwrap_or(0),
            ..ClusterConfig::default()
        };
        if let Some(nodes) = &self.scenario.cluster.nodes {
            c.nodes = nodes
                .iter()
                .map(|n| NodeConfig {
                    name: n.name.clone(),
                    control_plane: n.role.as_deref() == Some("control-plane"),
                })
                .collect();
        }
        if let Some(m) = &self.scenario.cluster.proxy_mode {
            c.proxy_mode = m.clone();
        }
        if let Some(p) = &self.scenario.cluster.load_balancer_pool {
            c.lb_pool = parse_pool(p).ok().flatten();
        }
        if let Some(ms) = self
            .scenario
            .cluster
            .epoch
            .as_deref()
            .and_then(apiserver::sim::parse_rfc3339)
        {
            c.epoch_ms = ms;
        }
        c
    }
}

/// Reads and checks a scenario: YAML shape, unknown keys, step form, known commands,
/// referenced files. Nothing runs unless all of it holds.
pub fn load(path: &Path) -> Result<Loaded, ScenarioError> {
    let file = path.display().to_string();
    let err = |line: usize, col: usize, message: String| ScenarioError {
        file: file.clone(),
        line,
        col,
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| err(1, 1, format!("cannot read scenario: {e}")))?;
    let scenario: Scenario = serde_norway::from_str(&text).map_err(|e| {
        let (line, col) = e
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        let msg = e.to_string();
        // serde_norway appends " at line L column C"; the position is already in front.
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
        err(line, col, msg)
    })?;
    let step_lines = locate_steps(&text, scenario.steps.len());
    let loaded = Loaded {
        path: path.to_owned(),
        scenario,
        step_lines,
    };
    for (i, step) in loaded.scenario.steps.iter().enumerate() {
        let line = loaded.step_lines.get(i).copied().unwrap_or(1);
        check_step(&loaded, step).map_err(|m| err(line, 5, m))?;
    }
    if let Some(m) = &loaded.scenario.cluster.proxy_mode {
        if !["userspace", "iptables", "ipvs", "nftables"].contains(&m.as_str()) {
            return Err(err(1, 1, format!("cluster.proxyMode: unknown mode \"{m}\" (expected userspace, iptables, ipvs or nftables)")));
        }
    }
    if let Some(p) = &loaded.scenario.cluster.load_balancer_pool {
        parse_pool(p).map_err(|m| err(1, 1, m))?;
    }
    if let Some(e) = &loaded.scenario.cluster.epoch {
        if apiserver::sim::parse_rfc3339(e).is_none() {
            return Err(err(
                1,
                1,
                format!(
                    "cluster.epoch: \"{e}\" is not an RFC 3339 time (e.g. 2020-10-27T10:00:00Z)"
                ),
            ));
        }
    }
    if let Some(nodes) = &loaded.scenario.cluster.nodes {
        if nodes.is_empty() {
            return Err(err(
                1,
                1,
                "cluster.nodes: at least one node is needed".into(),
            ));
        }
        for n in nodes {
            if !apiserver::validation::is_dns1123_subdomain(&n.name) {
                return Err(err(1, 1, format!("cluster.nodes: \"{}\" is not a valid node name (lowercase RFC 1123 subdomain)", n.name)));
            }
            if let Some(r) = &n.role {
                if r != "control-plane" && r != "worker" {
                    return Err(err(
                        1,
                        1,
                        format!(
                            "cluster.nodes: role \"{r}\" of {} must be control-plane or worker",
                            n.name
                        ),
                    ));
                }
            }
        }
    }
    Ok(loaded)
}

/// `172.18.255.200-172.18.255.250` → the range; `none` → no pool.
fn parse_pool(s: &str) -> Result<Option<(std::net::Ipv4Addr, std::net::Ipv4Addr)>, String> {
    if s == "none" || s.is_empty() {
        return Ok(None);
    }
    let bad = || {
        format!("cluster.loadBalancerPool: \"{s}\" is not FIRST-LAST (e.g. 172.18.255.200-172.18.255.250) or none")
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (std::net::Ipv4Addr, std::net::Ipv4Addr) = (
        a.trim().parse().map_err(|_| bad())?,
        b.trim().parse().map_err(|_| bad())?,
    );
    if u32::from(a) > u32::from(b) {
        return Err(bad());
    }
    Ok(Some((a, b)))
}

/// Finds the line of each step's first key under `steps:` (serde gives no spans for values).
fn locate_steps(text: &str, n: usize) -> Vec<usize> {
    let mut in_steps = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("steps:") {
            in_steps = true;
            continue;
        }
        if in_steps {
            if !line.starts_with(' ')
                && !line.starts_with('-')
                && !line.trim().is_empty()
                && !line.starts_with('#')
            {
                in_steps = false;
                continue;
            }
            if line.trim_start().starts_with("- ") {
                out.push(i + 1);
            }
        }
    }
    out.resize(n.max(out.len()), 1);
    out
}

fn check_step(l: &Loaded, step: &Step) -> Result<(), String> {
    match (&step.run, &step.sleep) {
        (Some(_), Some(_)) => return Err("a step has either `run:` or `sleep:`, not both".into()),
        (None, None) => return Err("a step needs `run:` or `sleep:`".into()),
        (None, Some(d)) => {
            return parse_duration_ms(d)
                .map(|_| ())
                .ok_or_else(|| format!("sleep: \"{d}\" is not a duration (e.g. 30s, 62m, 1h30m)"));
        }
        (Some(_), None) => {}
    }
    let run = step.run.as_deref().unwrap_or_default();
    let argv = shell_words::split(run).map_err(|e| format!("cannot parse command `{run}`: {e}"))?;
    let Some(cmd) = argv.first() else {
        return Err("empty command".into());
    };
    if !known_command(cmd) {
        let all: Vec<&str> = COMMANDS
            .iter()
            .chain(crate::probes::COMMANDS)
            .copied()
            .collect();
        return Err(format!(
            "unknown command \"{cmd}\" (netsim provides: {})",
            all.join(", ")
        ));
    }
    if let Some(on) = step
        .on
        .as_ref()
        .filter(|o| !o.starts_with("pod/") && *o != "external")
    {
        let known = l
            .scenario
            .cluster
            .nodes
            .as_ref()
            .map(|ns| ns.iter().any(|n| &n.name == on))
            .unwrap_or_else(|| ClusterConfig::default().nodes.iter().any(|n| &n.name == on));
        if !known {
            return Err(format!("on: \"{on}\" is not a node of this cluster"));
        }
    }
    if cmd == "kubectl" {
        kubectl::check(&argv[1..])?;
        for f in kubectl::files_named(&argv[1..]) {
            if f.contains('$') {
                continue;
            }
            let files = ScenarioFiles {
                inline: &l.scenario.files,
                dir: l.dir().to_owned(),
            };
            if kubectl::FileSource::read(&files, &f).is_none()
                && kubectl::FileSource::list_dir(&files, &f).is_none()
            {
                return Err(format!(
                    "file \"{f}\" is neither in `files:` nor in {}",
                    l.dir().display()
                ));
            }
        }
    }
    if let Some(e) = &step.expect {
        for m in &e.matches {
            regex::Regex::new(m).map_err(|er| format!("expect.matches: bad regex {m:?}: {er}"))?;
        }
    }
    Ok(())
}

/// `files:` first, then the scenario's folder.
pub struct ScenarioFiles<'a> {
    pub inline: &'a BTreeMap<String, String>,
    pub dir: PathBuf,
}

impl kubectl::FileSource for ScenarioFiles<'_> {
    fn read(&self, name: &str) -> Option<String> {
        if let Some(s) = self.inline.get(name) {
            return Some(s.clone());
        }
        std::fs::read_to_string(self.dir.join(name)).ok()
    }

    fn list_dir(&self, name: &str) -> Option<Vec<String>> {
        let prefix = format!("{}/", name.trim_end_matches('/'));
        let inline: Vec<String> = self
            .inline
            .keys()
            .filter(|k| k.starts_with(&prefix))
            .cloned()
            .collect();
        if !inline.is_empty() {
            return Some(inline);
        }
        let path = self.dir.join(name);
        if !path.is_dir() {
            return None;
        }
        let mut files: Vec<String> = std::fs::read_dir(&path)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml") || f.ends_with(".yml") || f.ends_with(".json"))
            .map(|f| format!("{prefix}{f}"))
            .collect();
        files.sort();
        Some(files)
    }
}
