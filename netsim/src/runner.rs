//! Runs a loaded scenario against a cluster and writes the transcript.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use apiserver::store::Store;

use crate::cluster::{Cluster, ClusterError};
use crate::kubectl::{self, parse_duration_ms};
use crate::output::Output;
use crate::probes::{self, Place};
use crate::scenario::{Loaded, ScenarioFiles};

/// The result of one scenario run.
pub struct RunResult {
    pub transcript: String,
    /// The first failed expectation, if any (the run stops there).
    pub failure: Option<String>,
}

/// Replaces `$NAME` / `${NAME}` with captured values.
fn substitute(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.peek() == Some(&'}') {
            chars.next();
        }
        match vars.get(&name) {
            Some(v) => out.push_str(v),
            None if name.is_empty() => out.push('$'),
            None => {}
        }
    }
    out
}

/// Runs one command line at `place` (a node's shell, or a shell inside a pod).
async fn exec(
    cluster: &mut Cluster,
    place: &Place,
    argv: &[String],
    files: &ScenarioFiles<'_>,
) -> Result<Output, ClusterError> {
    let cmd = argv.first().map(String::as_str).unwrap_or("");
    let in_pod = matches!(place, Place::Pod { .. });
    Ok(match cmd {
        // `kubectl exec POD [-n NS] [-c C] -- CMD...` runs CMD inside the pod.
        "kubectl" if !in_pod && argv.get(1).map(String::as_str) == Some("exec") => {
            let dash = argv.iter().position(|a| a == "--").unwrap_or(argv.len());
            let mut ns = "default".to_owned();
            let mut pod = None;
            let mut i = 2;
            while i < dash {
                match argv[i].as_str() {
                    "-n" | "--namespace" => {
                        ns = argv.get(i + 1).cloned().unwrap_or_default();
                        i += 1;
                    }
                    "-c" | "--container" => i += 1,
                    a if a.starts_with('-') => {}
                    a => pod = Some(a.trim_start_matches("pod/").to_owned()),
                }
                i += 1;
            }
            let Some(name) = pod else {
                let mut o = Output::default();
                o.err("error: expected 'exec POD_NAME COMMAND [ARG1] [ARG2] ... [ARGN]'.\nPOD_NAME and COMMAND are required arguments for the exec command\n");
                o.exit = 1;
                return Ok(o);
            };
            if cluster
                .cache()
                .get("pods", &format!("{ns}/{name}"))
                .is_none()
            {
                let mut o = Output::default();
                o.err(&format!(
                    "Error from server (NotFound): pods \"{name}\" not found\n"
                ));
                o.exit = 1;
                return Ok(o);
            }
            let inner = Place::Pod {
                namespace: ns,
                name,
            };
            let mut o = Box::pin(exec(
                cluster,
                &inner,
                &argv[(dash + 1).min(argv.len())..],
                files,
            ))
            .await?;
            if o.exit != 0 {
                o.err(&format!("command terminated with exit code {}\n", o.exit));
            }
            o
        }
        "kubectl" if !in_pod => kubectl::run(cluster, &argv[1..], files).await?,
        "echo" => {
            let mut o = Output::default();
            o.out(&format!("{}\n", argv[1..].join(" ")));
            o
        }
        "curl" => probes::curl(cluster, place, &argv[1..]).await?,
        "ping" => probes::ping(cluster, place, &argv[1..]).await?,
        "dig" | "nslookup" => {
            probes::dns_tool(cluster, place, argv, &shell_words::join(argv)).await?
        }
        "cat" => probes::cat(cluster, place, argv),
        "ip" => probes::ip(cluster, place, argv),
        c if probes::COMMANDS.contains(&c) && !in_pod => match place {
            Place::Node(n) => probes::view(cluster, n, argv),
            Place::Pod { .. } => Output::default(),
            Place::External => {
                let mut o = Output::default();
                o.err(&format!("{c}: the laptop outside the cluster has no kube-proxy rules; run it on a node\n"));
                o.exit = 1;
                o
            }
        },
        _ => {
            let mut o = Output::default();
            if in_pod {
                o.err(&format!("sh: {cmd}: not found\n"));
            } else {
                o.err(&format!("bash: {cmd}: command not found\n"));
            }
            o.exit = 127;
            o
        }
    })
}

pub async fn run(
    loaded: &Loaded,
    seed: Option<u64>,
    store: Arc<dyn Store>,
) -> Result<RunResult, ClusterError> {
    let config = loaded.cluster_config(seed);
    let cluster = Cluster::new(config, store).await?;
    run_on(cluster, loaded).await
}

/// Runs the steps on a cluster that is already up. A store that stops answering ends the
/// run with its error (after the step that found out), never with a half-printed success.
pub async fn run_on(mut cluster: Cluster, loaded: &Loaded) -> Result<RunResult, ClusterError> {
    let default_host = cluster
        .config
        .control_plane()
        .or(cluster.config.nodes.first())
        .map(|n| n.name.clone())
        .unwrap_or_default();
    let files = ScenarioFiles {
        inline: &loaded.scenario.files,
        dir: loaded.dir().to_owned(),
    };
    let mut vars = BTreeMap::new();
    let mut t = String::new();
    for step in &loaded.scenario.steps {
        if let Some(d) = &step.sleep {
            let ms = parse_duration_ms(d).unwrap_or(0);
            let _ = writeln!(t, "# ... {d} later");
            let target = cluster.now_ms() + ms;
            cluster.advance_to(target).await?;
            continue;
        }
        let run = substitute(step.run.as_deref().unwrap_or_default(), &vars);
        let place = Place::parse(step.on.as_deref().unwrap_or(&default_host));
        let _ = writeln!(t, "{}{run}", place.prompt());
        let argv = shell_words::split(&run).unwrap_or_default();
        let out = exec(&mut cluster, &place, &argv, &files).await?;
        let shown = out.combined();
        t.push_str(&shown);
        if !shown.is_empty() && !shown.ends_with('\n') {
            t.push('\n');
        }
        if out.exit != 0 {
            let _ = writeln!(t, "[exit {}]", out.exit);
        }
        cluster.check_store().await?;
        if let Some(name) = &step.capture {
            vars.insert(name.clone(), out.stdout().trim().to_owned());
        }
        if let Some(e) = &step.expect {
            let mut fails = Vec::new();
            let want_exit = e.exit.unwrap_or(0);
            if e.exit.is_some() && out.exit != want_exit {
                fails.push(format!("exit status {} (expected {want_exit})", out.exit));
            }
            for c in &e.contains {
                if !shown.contains(c.as_str()) {
                    fails.push(format!("output does not contain {c:?}"));
                }
            }
            for m in &e.matches {
                if let Ok(re) = regex::Regex::new(m) {
                    if !re.is_match(&shown) {
                        fails.push(format!("output does not match /{m}/"));
                    }
                }
            }
            if !fails.is_empty() {
                let msg = format!(
                    "expectation failed for `{run}`:\n  - {}\n--- output ---\n{shown}",
                    fails.join("\n  - ")
                );
                return Ok(RunResult {
                    transcript: t,
                    failure: Some(msg),
                });
            }
        }
    }
    Ok(RunResult {
        transcript: t,
        failure: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_substitute_both_forms() {
        let mut v = BTreeMap::new();
        v.insert("POD_IP".to_owned(), "10.244.1.2".to_owned());
        assert_eq!(
            substitute("curl $POD_IP/x ${POD_IP}", &v),
            "curl 10.244.1.2/x 10.244.1.2"
        );
        assert_eq!(substitute("echo $ alone", &v), "echo $ alone");
    }
}
