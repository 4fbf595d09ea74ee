//! Runs a loaded scenario against a cluster and writes the transcript.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use apiserver::store::Store;

use crate::cluster::{Cluster, ClusterError};
use crate::kubectl::{self, parse_duration_ms};
use crate::output::Output;
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
        let host = step.on.clone().unwrap_or_else(|| default_host.clone());
        let _ = writeln!(t, "user@{host}:~$ {run}");
        let argv = shell_words::split(&run).unwrap_or_default();
        let out = match argv.first().map(String::as_str) {
            Some("kubectl") => kubectl::run(&mut cluster, &argv[1..], &files).await?,
            Some("echo") => {
                let mut o = Output::default();
                o.out(&format!("{}\n", argv[1..].join(" ")));
                o
            }
            _ => {
                let mut o = Output::default();
                o.err(&format!(
                    "bash: {}: command not found\n",
                    argv.first().map(String::as_str).unwrap_or("")
                ));
                o.exit = 127;
                o
            }
        };
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
