//! The built-in kubectl. It speaks HTTP to the apiserver through the same axum router real
//! clients use (in-process, no socket), reads server-side Tables for `get`, and prints what
//! kubectl v1.34 prints: messages, errors (`Error from server (NotFound): ...`) and exit codes.
//!
//! Commands that wait (`wait`, `rollout status`, `delete`) advance the virtual clock to the
//! cluster's next event instead of sleeping.

pub mod describe;
pub mod jsonpath;
pub mod tabwriter;

use std::collections::BTreeMap;

use apiserver::resources::{self, Resource};
use axum::body::Body;
use http::{Method, Request};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::cluster::cache::str_at;
use crate::cluster::{Cluster, ClusterError};
use crate::output::Output;

/// Where `-f NAME` is read from: the scenario's `files:` first, then its folder.
pub trait FileSource {
    fn read(&self, name: &str) -> Option<String>;
    /// Files of a directory named by `-f DIR` (sorted), if it is one.
    fn list_dir(&self, name: &str) -> Option<Vec<String>>;
}

/// One parsed kubectl command line.
#[derive(Debug, Default)]
struct Args {
    positional: Vec<String>,
    flags: BTreeMap<String, Vec<String>>,
}

/// Flags that take a value; all others are booleans.
const VALUE_FLAGS: &[(&str, &str)] = &[
    ("n", "namespace"),
    ("o", "output"),
    ("l", "selector"),
    ("f", "filename"),
    ("", "field-selector"),
    ("", "for"),
    ("", "timeout"),
    ("", "replicas"),
    ("", "grace-period"),
    ("", "cascade"),
    ("c", "container"),
    ("", "dry-run"),
    ("", "field-manager"),
    ("", "from-literal"),
    ("", "type"),
    ("", "image"),
    ("", "port"),
];
const BOOL_FLAGS: &[(&str, &str)] = &[
    ("A", "all-namespaces"),
    ("", "show-labels"),
    ("", "no-headers"),
    ("", "overwrite"),
    ("", "all"),
    ("", "force"),
    ("R", "recursive"),
    ("", "wait"),
    ("", "ignore-not-found"),
    ("", "watch"),
    ("w", ""),
];

fn long_name(short: &str) -> Option<&'static str> {
    VALUE_FLAGS
        .iter()
        .chain(BOOL_FLAGS.iter())
        .find(|(s, _)| !s.is_empty() && *s == short)
        .map(|(s, l)| if l.is_empty() { *s } else { *l })
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut a = Args::default();
    let mut i = 0;
    while i < argv.len() {
        let arg = &argv[i];
        i += 1;
        if arg == "--" {
            a.positional.extend(argv[i..].iter().cloned());
            break;
        }
        let (name, inline): (String, Option<String>) = if let Some(rest) = arg.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (rest.to_owned(), None),
            }
        } else if let Some(rest) = arg.strip_prefix('-').filter(|r| !r.is_empty()) {
            let (s, v) = rest.split_at(1);
            let long =
                long_name(s).ok_or_else(|| format!("unknown shorthand flag: '{s}' in {arg}"))?;
            let v = v.strip_prefix('=').unwrap_or(v);
            (long.to_owned(), (!v.is_empty()).then(|| v.to_owned()))
        } else {
            a.positional.push(arg.clone());
            continue;
        };
        if VALUE_FLAGS.iter().any(|(_, l)| *l == name) {
            let v = match inline {
                Some(v) => v,
                None => {
                    let v = argv
                        .get(i)
                        .cloned()
                        .ok_or_else(|| format!("flag needs an argument: --{name}"))?;
                    i += 1;
                    v
                }
            };
            a.flags.entry(name).or_default().push(v);
        } else if BOOL_FLAGS.iter().any(|(_, l)| *l == name) || name == "w" {
            a.flags
                .entry(name)
                .or_default()
                .push(inline.unwrap_or_else(|| "true".into()));
        } else {
            return Err(format!("unknown flag: --{name}"));
        }
    }
    Ok(a)
}

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.flags
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.flags.get(name).cloned().unwrap_or_default()
    }
    fn on(&self, name: &str) -> bool {
        self.get(name).is_some_and(|v| v != "false")
    }
}

/// The kubectl subcommands the built-in kubectl implements.
pub const SUBCOMMANDS: &[&str] = &[
    "exec",
    "get",
    "apply",
    "create",
    "delete",
    "describe",
    "scale",
    "set",
    "rollout",
    "wait",
    "label",
    "version",
    "cluster-info",
    "api-resources",
];

/// kubectl takes global flags before the subcommand (`kubectl -n kube-system get pod`):
/// moves them after it, so the subcommand comes first.
pub fn normalize(argv: &[String]) -> Vec<String> {
    let mut lead = Vec::new();
    let mut i = 0;
    while i < argv.len() && argv[i].starts_with('-') {
        let a = &argv[i];
        lead.push(a.clone());
        let name = a.trim_start_matches('-');
        let takes_value = !a.contains('=')
            && (VALUE_FLAGS
                .iter()
                .any(|(s, l)| (!s.is_empty() && *s == name) || *l == name))
            && (a.starts_with("--") || a.len() == 2);
        if takes_value {
            if let Some(v) = argv.get(i + 1) {
                lead.push(v.clone());
                i += 1;
            }
        }
        i += 1;
    }
    let mut out: Vec<String> = argv[i..].to_vec();
    if out.is_empty() {
        return lead;
    }
    out.splice(1..1, lead);
    out
}

/// Checks a command line before a scenario runs (unknown subcommand or flag).
pub fn check(argv: &[String]) -> Result<(), String> {
    let argv = &normalize(argv)[..];
    let sub = argv.first().ok_or("kubectl: missing subcommand")?;
    if sub == "exec" {
        // `exec` runs a command inside a pod: its own words are that command's.
        return Ok(());
    }
    if !SUBCOMMANDS.contains(&sub.as_str()) {
        return Err(format!(
            "unknown kubectl command \"{sub}\" (built in: {})",
            SUBCOMMANDS.join(", ")
        ));
    }
    parse_args(&argv[1..]).map(|_| ())
}

/// Files a command line reads (`-f`), for checking before the run.
pub fn files_named(argv: &[String]) -> Vec<String> {
    let argv = &normalize(argv)[..];
    parse_args(argv.get(1..).unwrap_or_default())
        .map(|a| a.all("filename"))
        .unwrap_or_default()
}

struct Kubectl<'a> {
    cluster: &'a mut Cluster,
    files: &'a dyn FileSource,
    out: Output,
}

struct Reply {
    status: u16,
    body: Value,
    warnings: Vec<String>,
}

const TABLE_ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

/// Runs `kubectl ARGS...` against the cluster.
pub async fn run(
    cluster: &mut Cluster,
    argv: &[String],
    files: &dyn FileSource,
) -> Result<Output, ClusterError> {
    let argv = &normalize(argv)[..];
    let mut k = Kubectl {
        cluster,
        files,
        out: Output::default(),
    };
    let code = match k.dispatch(argv).await {
        Ok(code) => code,
        Err(Fail::Cluster(e)) => return Err(e),
        Err(Fail::Msg(m)) => {
            k.out.err(&format!("{m}\n"));
            1
        }
    };
    k.out.exit = code;
    Ok(k.out)
}

enum Fail {
    Cluster(ClusterError),
    Msg(String),
}

impl From<ClusterError> for Fail {
    fn from(e: ClusterError) -> Self {
        Fail::Cluster(e)
    }
}
impl From<String> for Fail {
    fn from(e: String) -> Self {
        Fail::Msg(e)
    }
}

type R<T> = Result<T, Fail>;

/// `Error from server (Reason): message` as kubectl's `StandardErrorMessage` renders a Status.
/// Whether `obj` has a status condition `ty` with status `want` (both compared as kubectl
/// does, case-insensitively).
fn condition_is(obj: &Value, ty: &str, want: &str) -> bool {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|x| {
                str_at(x, "/type").is_some_and(|t| t.eq_ignore_ascii_case(ty))
                    && str_at(x, "/status").is_some_and(|s| s.eq_ignore_ascii_case(want))
            })
        })
}

/// `kubectl create deployment NAME --image=I...`, as create_deployment.go builds it:
/// label `app: NAME` on the Deployment, its selector and template; one container per image,
/// named after the image (path, tag and digest dropped, `_` → `-`, repeats numbered).
fn create_deployment(name: &str, a: &Args) -> R<Value> {
    let images = a.all("image");
    if images.is_empty() {
        return Err(Fail::Msg(
            "error: required flag(s) \"image\" not set".into(),
        ));
    }
    let replicas: i64 = match a.get("replicas") {
        None => 1,
        Some(r) => r.parse().map_err(|_| {
            format!("error: invalid argument \"{r}\" for \"-r, --replicas\" flag: strconv.ParseInt: parsing \"{r}\": invalid syntax")
        })?,
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let containers: Vec<Value> = images
        .iter()
        .map(|image| {
            let last = image.rsplit('/').next().unwrap_or(image);
            let base = last
                .split([':', '@'])
                .next()
                .unwrap_or(last)
                .replace('_', "-");
            let n = seen.entry(base.clone()).or_insert(0);
            *n += 1;
            let cname = if *n == 1 { base } else { format!("{base}-{n}") };
            json!({"name": cname, "image": image, "resources": {}})
        })
        .collect();
    let mut d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "strategy": {},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": containers}}}});
    if let Some(port) = a.get("port") {
        let p: i64 = port.parse().map_err(|_| {
            format!("error: invalid argument \"{port}\" for \"--port\" flag: strconv.ParseInt: parsing \"{port}\": invalid syntax")
        })?;
        d["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"containerPort": p}]);
    }
    Ok(d)
}

fn server_error(status: &Value, source: Option<(&str, &str)>) -> String {
    let reason = str_at(status, "/reason").unwrap_or("InternalError");
    let message = str_at(status, "/message").unwrap_or("unknown");
    if reason == "Invalid" {
        return invalid_error(status);
    }
    match source {
        Some((verb, file)) => {
            format!("Error from server ({reason}): error when {verb} \"{file}\": {message}")
        }
        None => format!("Error from server ({reason}): {message}"),
    }
}

/// An Invalid Status as kubectl's `checkErr` prints it: from `details`, not the message —
/// the kind without its group (`The Deployment "web" is invalid`, where the message says
/// `Deployment.apps`), then the causes (duplicates dropped): one on the same line, several
/// as `* field: message` lines under it (`MultilineError`).
fn invalid_error(status: &Value) -> String {
    let Some(details) = status.get("details").filter(|d| d.is_object()) else {
        return "The request is invalid".to_owned();
    };
    let kind = str_at(details, "/kind").unwrap_or_default();
    let name = str_at(details, "/name").unwrap_or_default();
    let head = if kind.is_empty() && name.is_empty() {
        "The request is invalid".to_owned()
    } else {
        format!("The {kind} {} is invalid", apiserver::error::quoted(name))
    };
    let mut causes: Vec<String> = Vec::new();
    for c in details
        .get("causes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let line = format!(
            "{}: {}",
            str_at(c, "/field").unwrap_or_default(),
            str_at(c, "/message").unwrap_or_default()
        );
        if !causes.contains(&line) {
            causes.push(line);
        }
    }
    match causes.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!("{head}: \n* {}", many.join("\n* ")),
    }
}

fn resource(name: &str) -> R<&'static Resource> {
    resources::find(name).ok_or_else(|| {
        Fail::Msg(format!(
            "error: the server doesn't have a resource type \"{name}\""
        ))
    })
}

/// Last-applied configuration: compact JSON with sorted keys and a trailing newline, of the
/// manifest as kubectl's builder hands it over: the namespace filled in for a namespaced
/// object (`ns`), and `metadata.annotations` present, `{}` when the annotation itself was
/// the only one (`GetModifiedConfiguration` sets an empty map before encoding).
fn last_applied(doc: &Value, ns: Option<&str>) -> String {
    let mut d = doc.clone();
    if let Some(m) = d.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(ns) = ns {
            m.entry("namespace").or_insert_with(|| json!(ns));
        }
        let ann = m.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = ann.as_object_mut() {
            a.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
    format!("{}\n", serde_json::to_string(&d).unwrap_or_default())
}

/// Whether go-yaml v2's `resolve` reads `s`, unquoted, as something other than a string
/// (YAML 1.1: null, bools like `yes`/`off`, ints in any base, floats, sexagesimal numbers,
/// timestamps); those are the strings it double-quotes.
fn go_yaml_reads_as_non_string(s: &str) -> bool {
    static FLOAT: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$").ok()
    });
    static BASE60: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").ok()
    });
    static TIMESTAMP: std::sync::LazyLock<Option<regex::Regex>> = std::sync::LazyLock::new(|| {
        regex::Regex::new(
            r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(\.[0-9]*)?(Z|[-+][0-9]{2}:[0-9]{2})?)?$",
        )
        .ok()
    });
    const WORDS: [&str; 32] = [
        "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
        "true", "True", "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF",
        ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN",
    ];
    if s.is_empty() || WORDS.contains(&s) {
        return true;
    }
    if let Some(rest) = s.strip_prefix(['+', '-']) {
        if [".inf", ".Inf", ".INF"].contains(&rest) {
            return true;
        }
    }
    let plain = s.replace('_', "");
    let unsigned = plain.trim_start_matches(['+', '-']);
    let int =
        |digits: &str, radix| !digits.is_empty() && i128::from_str_radix(digits, radix).is_ok();
    let is_int = if let Some(h) = unsigned.strip_prefix("0x") {
        int(h, 16)
    } else if let Some(b) = unsigned.strip_prefix("0b") {
        int(b, 2)
    } else if let Some(o) = unsigned.strip_prefix("0o") {
        int(o, 8)
    } else if unsigned.len() > 1 && unsigned.starts_with('0') {
        int(&unsigned[1..], 8)
    } else {
        int(unsigned, 10)
    };
    let matches = |re: &std::sync::LazyLock<Option<regex::Regex>>, t: &str| {
        re.as_ref().is_some_and(|r| r.is_match(t))
    };
    is_int || matches(&FLOAT, &plain) || matches(&BASE60, s) || matches(&TIMESTAMP, s)
}

/// YAML as kubectl prints it (go-yaml): keys sorted, sequences not indented, strings that
/// need quoting in double quotes, RFC 3339 timestamps quoted.
pub fn to_yaml(v: &Value) -> String {
    let raw = serde_norway::to_string(v).unwrap_or_default();
    let mut out = String::with_capacity(raw.len());
    // The indentation of the key whose block scalar (`|`) is being copied, if any.
    let mut block: Option<usize> = None;
    for line in raw.lines() {
        let lead = line.len() - line.trim_start().len();
        if let Some(key_col) = block {
            if line.trim().is_empty() || lead > key_col {
                out.push_str(line);
                out.push('\n');
                continue;
            }
            block = None;
        }
        let key_col = lead
            + if line.trim_start().starts_with("- ") {
                2
            } else {
                0
            };
        let (head, value) = match line.find(": ") {
            Some(i) => line.split_at(i + 2),
            None => match line.trim_start().strip_prefix("- ") {
                Some(rest) => line.split_at(line.len() - rest.len()),
                None => (line, ""),
            },
        };
        if value.starts_with(['|', '>']) {
            block = Some(key_col);
        }
        // go-yaml v2 double-quotes a string only when it would read back as another type
        // (`"true"`, `"1:20"`, timestamps); one that is merely not plain-safe (`a: b`, a
        // leading `[`) stays single-quoted. serde_norway reads YAML 1.2, so some of go-yaml's
        // YAML 1.1 non-strings (`yes`, `1:20`, `2020-10-27`) come out plain.
        let inner = value.strip_prefix('\'').and_then(|x| x.strip_suffix('\''));
        let double = match inner {
            Some(x) => !x.contains(['\'', '"', '\\']) && go_yaml_reads_as_non_string(x),
            None => {
                !value.is_empty()
                    && !value.starts_with(['"', '|', '>', '[', '{', '&', '*', '!'])
                    && !json_scalar_text(value)
                    && go_yaml_reads_as_non_string(value)
            }
        };
        out.push_str(head);
        if double {
            out.push('"');
            out.push_str(inner.unwrap_or(value));
            out.push('"');
        } else if value.starts_with('"') {
            // serde_norway's own double-quoted scalars (escapes), folded by its emitter.
            out.push_str(value);
        } else {
            // Long plain and single-quoted scalars are folded at spaces past column 80
            // (go-yaml's best_width), continuing two columns in from their key.
            fold_scalar(&mut out, head.chars().count(), value, key_col + 2);
        }
        out.push('\n');
    }
    out
}

/// How serde_norway prints a JSON bool, null or number: those stay plain.
fn json_scalar_text(v: &str) -> bool {
    matches!(v, "true" | "false" | "null")
        || (v.parse::<f64>().is_ok()
            && v.bytes()
                .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b)))
}

/// go-yaml v2's emitter writing a plain or single-quoted scalar starting at `column`: a
/// space after a non-space, past `best_width` (80) and before a non-space, becomes a line
/// break indented to `indent` (yaml_emitter_write_plain_scalar / _single_quoted).
fn fold_scalar(out: &mut String, mut column: usize, value: &str, indent: usize) {
    let chars: Vec<char> = value.chars().collect();
    let quoted = value.starts_with('\'');
    let mut after_space = false;
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let next_is_space = chars.get(i + 1).is_none_or(|n| *n == ' ');
            let inside = !quoted || (i > 1 && i + 2 < chars.len());
            if !after_space && column > 80 && !next_is_space && inside {
                out.push('\n');
                out.extend(std::iter::repeat_n(' ', indent));
                column = indent;
            } else {
                out.push(c);
                column += 1;
            }
            after_space = true;
        } else {
            out.push(c);
            column += 1;
            after_space = false;
        }
    }
}

impl Kubectl<'_> {
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        accept: &str,
        content_type: &str,
    ) -> R<Reply> {
        let router = apiserver::http::router(self.cluster.api.clone());
        let bytes = body
            .map(|b| serde_json::to_vec(b).unwrap_or_default())
            .unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("accept", accept)
            .header("content-type", content_type)
            .body(Body::from(bytes))
            .map_err(|e| Fail::Msg(format!("error: {e}")))?;
        let resp = router
            .oneshot(req)
            .await
            .map_err(|e| Fail::Msg(format!("error: {e}")))?;
        let status = resp.status().as_u16();
        let warnings = resp
            .headers()
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(|w| {
                // `299 - "text"`: the text is a quoted-string (client-go ParseWarningHeader).
                w.splitn(3, ' ')
                    .nth(2)
                    .unwrap_or(w)
                    .trim_matches('"')
                    .replace("\\\"", "\"")
                    .replace("\\\\", "\\")
            })
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Fail::Msg(format!("error: {e}")))?
            .to_bytes();
        let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            body,
            warnings,
        })
    }

    async fn get_json(&self, path: &str) -> R<Reply> {
        self.request(
            Method::GET,
            path,
            None,
            "application/json",
            "application/json",
        )
        .await
    }

    fn namespace(&self, a: &Args) -> String {
        a.get("namespace").unwrap_or("default").to_owned()
    }

    async fn dispatch(&mut self, argv: &[String]) -> R<i32> {
        let Some(sub) = argv.first() else {
            return Err(Fail::Msg("error: kubectl needs a command".into()));
        };
        let a = parse_args(&argv[1..]).map_err(|e| format!("error: {e}"))?;
        match sub.as_str() {
            "get" => self.get(&a).await,
            "apply" => self.apply(&a, true).await,
            "create" if a.all("filename").is_empty() && !a.positional.is_empty() => {
                self.create_generated(&a).await
            }
            "create" => self.apply(&a, false).await,
            "delete" => self.delete(&a).await,
            "describe" => self.describe(&a).await,
            "scale" => self.scale(&a).await,
            "set" => self.set_image(&a).await,
            "rollout" => self.rollout(&a).await,
            "wait" => self.wait(&a).await,
            "label" => self.label(&a).await,
            "version" => {
                self.out.out(
                    "Client Version: v1.34.0\nKustomize Version: v5.7.1\nServer Version: v1.34.0\n",
                );
                Ok(0)
            }
            "cluster-info" => {
                let ip = self.cluster.config.node_ip(
                    self.cluster
                        .config
                        .nodes
                        .iter()
                        .position(|n| n.control_plane)
                        .unwrap_or(0),
                );
                self.out.out(&format!("Kubernetes control plane is running at https://{ip}:6443\nCoreDNS is running at https://{ip}:6443/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n\nTo further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n"));
                Ok(0)
            }
            "api-resources" => {
                let mut rows = vec![vec![
                    "NAME".to_owned(),
                    "SHORTNAMES".into(),
                    "APIVERSION".into(),
                    "NAMESPACED".into(),
                    "KIND".into(),
                ]];
                let mut all: Vec<&Resource> = resources::RESOURCES.iter().collect();
                all.sort_by_key(|r| (r.group.to_owned(), r.plural));
                for r in all {
                    rows.push(vec![
                        r.plural.to_owned(),
                        r.short_names.join(","),
                        r.api_version(),
                        r.namespaced.to_string(),
                        r.kind.to_owned(),
                    ]);
                }
                self.out.out(&tabwriter::format_columns(&rows));
                Ok(0)
            }
            other => Err(Fail::Msg(format!(
                "error: unknown command \"{other}\" for \"kubectl\""
            ))),
        }
    }

    /// `TYPE NAME...`, `TYPE/NAME...`, `TYPE1,TYPE2`, `all`.
    fn targets(&self, pos: &[String]) -> R<Vec<(&'static Resource, Option<String>)>> {
        let mut out = Vec::new();
        if pos.is_empty() {
            return Err(Fail::Msg("You must specify the type of resource to get. Use \"kubectl api-resources\" for a complete list of supported resources.\n\nerror: Required resource not specified.\nUse \"kubectl explain <resource>\" for a detailed description of that resource (e.g. kubectl explain pods).\nSee 'kubectl get -h' for help and examples".into()));
        }
        if pos[0].contains('/') {
            for p in pos {
                let (t, n) = p.split_once('/').ok_or_else(|| "error: there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (e.g. 'kubectl get resource/<resource_name>' instead of 'kubectl get resource resource/<resource_name>'".to_owned())?;
                out.push((resource(t)?, Some(n.to_owned())));
            }
            return Ok(out);
        }
        let types: Vec<&'static Resource> = pos[0]
            .split(',')
            .map(|t| -> R<Vec<&'static Resource>> {
                if t == "all" {
                    Ok(resources::ALL_ORDER
                        .iter()
                        .filter_map(|p| resources::find(p))
                        .collect())
                } else {
                    Ok(vec![resource(t)?])
                }
            })
            .collect::<R<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        if pos.len() > 1 {
            for t in &types {
                for n in &pos[1..] {
                    out.push((*t, Some(n.clone())));
                }
            }
        } else {
            out.extend(types.into_iter().map(|t| (t, None)));
        }
        Ok(out)
    }

    fn list_path(res: &Resource, ns: Option<&str>, a: &Args) -> String {
        let mut q = vec![];
        if let Some(l) = a.get("selector") {
            q.push(format!("labelSelector={}", urlencode(l)));
        }
        if let Some(f) = a.get("field-selector") {
            q.push(format!("fieldSelector={}", urlencode(f)));
        }
        q.push("limit=500".into());
        format!("{}?{}", res.collection_path(ns), q.join("&"))
    }

    async fn get(&mut self, a: &Args) -> R<i32> {
        let all_ns = a.on("all-namespaces");
        let ns = self.namespace(a);
        let targets = self.targets(&a.positional)?;
        let output = a.get("output").unwrap_or("").to_owned();
        let multi_type = targets
            .iter()
            .map(|t| t.0.plural)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
            || a.positional
                .first()
                .is_some_and(|p| p.split(',').any(|t| t == "all"));
        let mut code = 0;
        let mut objects: Vec<Value> = Vec::new();
        let mut tables: Vec<(String, Value)> = Vec::new();
        // Named objects of one type share one table, as kubectl groups them.
        let mut i = 0;
        while i < targets.len() {
            let (res, _) = targets[i];
            let mut names = Vec::new();
            while i < targets.len() && targets[i].0.plural == res.plural {
                if let Some(n) = &targets[i].1 {
                    names.push(n.clone());
                }
                i += 1;
            }
            let nsq = if !res.namespaced || all_ns {
                None
            } else {
                Some(ns.as_str())
            };
            let table_mode = matches!(output.as_str(), "" | "wide");
            let accept = if table_mode {
                TABLE_ACCEPT
            } else {
                "application/json"
            };
            if names.is_empty() {
                let r = self
                    .request(
                        Method::GET,
                        &Self::list_path(res, nsq, a),
                        None,
                        accept,
                        "application/json",
                    )
                    .await?;
                for w in &r.warnings {
                    self.out.err(&format!("Warning: {w}\n"));
                }
                if r.status >= 400 {
                    self.out.err(&format!("{}\n", server_error(&r.body, None)));
                    code = 1;
                    continue;
                }
                if table_mode {
                    tables.push((res.kind_qualified(), r.body));
                } else {
                    objects.extend(
                        r.body
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(|mut o| {
                                o["apiVersion"] = json!(res.api_version());
                                o["kind"] = json!(res.kind);
                                o
                            }),
                    );
                }
            } else {
                let mut rows = Vec::new();
                let mut first_table: Option<Value> = None;
                for n in names {
                    let path = format!(
                        "{}/{}",
                        res.collection_path(nsq.or(Some(ns.as_str())).filter(|_| res.namespaced)),
                        n
                    );
                    let r = self
                        .request(Method::GET, &path, None, accept, "application/json")
                        .await?;
                    for w in &r.warnings {
                        self.out.err(&format!("Warning: {w}\n"));
                    }
                    if r.status >= 400 {
                        self.out.err(&format!("{}\n", server_error(&r.body, None)));
                        code = 1;
                        continue;
                    }
                    if table_mode {
                        rows.extend(
                            r.body
                                .get("rows")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default(),
                        );
                        first_table.get_or_insert(r.body);
                    } else {
                        objects.push(r.body);
                    }
                }
                if let Some(mut t) = first_table {
                    t["rows"] = json!(rows);
                    tables.push((res.kind_qualified(), t));
                }
            }
        }
        let single_named = targets.len() == 1 && targets[0].1.is_some();
        match output.as_str() {
            "" | "wide" => {
                let mut blocks = Vec::new();
                for (kind, t) in &tables {
                    if t.get("rows").and_then(Value::as_array).is_none_or(Vec::is_empty) {
                        continue;
                    }
                    let opts = tabwriter::TableOptions {
                        wide: output == "wide",
                        with_namespace: all_ns,
                        show_labels: a.on("show-labels"),
                        no_headers: a.on("no-headers"),
                        show_kind: multi_type.then(|| kind.clone()),
                    };
                    blocks.push(tabwriter::print_table(t, &opts));
                }
                if blocks.is_empty() && code == 0 {
                    if all_ns || targets.iter().all(|t| !t.0.namespaced) {
                        self.out.err("No resources found\n");
                    } else {
                        self.out.err(&format!("No resources found in {ns} namespace.\n"));
                    }
                }
                self.out.out(&blocks.join("\n"));
            }
            "yaml" | "json" => {
                let v = if single_named && objects.len() == 1 {
                    objects.remove(0)
                } else {
                    json!({"apiVersion": "v1", "items": objects, "kind": "List", "metadata": {"resourceVersion": ""}})
                };
                if output == "yaml" {
                    self.out.out(&to_yaml(&v));
                } else {
                    self.out.out(&format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()));
                }
            }
            "name" => {
                for o in &objects {
                    let r = resources::by_kind(str_at(o, "/apiVersion").unwrap_or(""), str_at(o, "/kind").unwrap_or(""));
                    let kind = r.map(|r| r.kind_qualified()).unwrap_or_default();
                    self.out.out(&format!("{kind}/{}\n", str_at(o, "/metadata/name").unwrap_or_default()));
                }
            }
            o if o.starts_with("jsonpath=") || o.starts_with("jsonpath-as-json=") => {
                let tmpl = o.split_once('=').map(|x| x.1).unwrap_or_default();
                let data = if single_named && objects.len() == 1 {
                    objects.remove(0)
                } else {
                    json!({"apiVersion": "v1", "items": objects, "kind": "List", "metadata": {"resourceVersion": ""}})
                };
                match jsonpath::render(tmpl, &data, true) {
                    Ok(s) => self.out.out(&s),
                    Err(e) => return Err(Fail::Msg(format!("error: {e}"))),
                }
            }
            other => {
                return Err(Fail::Msg(format!(
                    "error: unable to match a printer suitable for the output format \"{other}\", allowed formats are: custom-columns,custom-columns-file,go-template,go-template-file,json,jsonpath,jsonpath-as-json,jsonpath-file,name,template,templatefile,wide,yaml"
                )))
            }
        }
        Ok(code)
    }

    /// Reads `-f` arguments into (file name, documents).
    fn read_manifests(&self, a: &Args) -> R<Vec<(String, Value)>> {
        let names = a.all("filename");
        if names.is_empty() {
            return Err(Fail::Msg("error: must specify one of -f and -k".into()));
        }
        let mut out = Vec::new();
        for name in names {
            let files = match self.files.list_dir(&name) {
                Some(list) => list,
                None => vec![name.clone()],
            };
            for f in files {
                let text = self
                    .files
                    .read(&f)
                    .ok_or_else(|| format!("error: the path \"{f}\" does not exist"))?;
                for doc in serde_norway::Deserializer::from_str(&text) {
                    let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| {
                        format!(
                            "error: error parsing {f}: error converting YAML to JSON: yaml: {e}"
                        )
                    })?;
                    if v.is_null() {
                        continue;
                    }
                    if let Some(items) = v
                        .get("items")
                        .and_then(Value::as_array)
                        .filter(|_| str_at(&v, "/kind").is_some_and(|k| k.ends_with("List")))
                    {
                        out.extend(items.iter().map(|i| (f.clone(), i.clone())));
                    } else {
                        out.push((f.clone(), v));
                    }
                }
            }
        }
        Ok(out)
    }

    fn doc_target(&self, doc: &Value, a: &Args) -> R<(&'static Resource, Option<String>, String)> {
        let av = str_at(doc, "/apiVersion").unwrap_or("");
        let kind = str_at(doc, "/kind").unwrap_or("");
        if kind.is_empty() || av.is_empty() {
            return Err(Fail::Msg("error: error validating data: [apiVersion not set, kind not set]; if you choose to ignore these errors, turn validation off with --validate=false".to_owned()));
        }
        let res = resources::by_kind(av, kind).ok_or_else(|| {
            format!("error: resource mapping not found for name: \"{}\" namespace: \"\" from \"\": no matches for kind \"{kind}\" in version \"{av}\"\nensure CRDs are installed first", str_at(doc, "/metadata/name").unwrap_or(""))
        })?;
        let ns = res.namespaced.then(|| {
            str_at(doc, "/metadata/namespace")
                .map(str::to_owned)
                .unwrap_or_else(|| self.namespace(a))
        });
        let name = str_at(doc, "/metadata/name").unwrap_or("").to_owned();
        Ok((res, ns, name))
    }

    async fn apply(&mut self, a: &Args, apply: bool) -> R<i32> {
        let docs = self.read_manifests(a)?;
        let mut code = 0;
        for (file, mut doc) in docs {
            let (res, ns, name) = match self.doc_target(&doc, a) {
                Ok(t) => t,
                Err(Fail::Msg(m)) => {
                    self.out.err(&format!("{m}\n"));
                    code = 1;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if let (Some(ns), Some(m)) =
                (&ns, doc.get_mut("metadata").and_then(Value::as_object_mut))
            {
                if let Some(docns) = m.get("namespace").and_then(Value::as_str) {
                    if a.get("namespace").is_some_and(|n| n != docns) {
                        self.out.err(&format!("error: the namespace from the provided object \"{docns}\" does not match the namespace \"{ns}\". You must pass '--namespace={docns}' to perform this operation.\n"));
                        code = 1;
                        continue;
                    }
                }
            }
            let coll = res.collection_path(ns.as_deref());
            let label = format!("{}/{}", res.kind_qualified(), name);
            if apply {
                let applied = last_applied(&doc, ns.as_deref());
                if let Some(meta) = doc.get_mut("metadata").and_then(Value::as_object_mut) {
                    let ann = meta.entry("annotations").or_insert(json!({}));
                    ann["kubectl.kubernetes.io/last-applied-configuration"] = json!(applied);
                }
                let live = if name.is_empty() {
                    None
                } else {
                    Some(self.get_json(&format!("{coll}/{name}")).await?)
                };
                match live {
                    Some(live) if live.status == 200 => {
                        let prev = str_at(&live.body, "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration")
                            .and_then(|s| serde_json::from_str::<Value>(s).ok());
                        if prev.is_none() {
                            self.out.err(&format!("Warning: resource {}/{name} is missing the kubectl.kubernetes.io/last-applied-configuration annotation which is required by kubectl apply. kubectl apply should only be used on resources created declaratively by either kubectl create --save-config or kubectl apply. The missing annotation will be patched automatically.\n", res.plural));
                        }
                        let new_cfg: Value = serde_json::from_str(&applied).unwrap_or(Value::Null);
                        if prev.as_ref() == Some(&new_cfg) {
                            self.out.out(&format!("{label} unchanged\n"));
                            continue;
                        }
                        let mut patch = apiserver::strategic::diff(
                            prev.as_ref().unwrap_or(&json!({})),
                            &new_cfg,
                        );
                        patch["metadata"]["annotations"]
                            ["kubectl.kubernetes.io/last-applied-configuration"] = json!(applied);
                        let r = self
                            .request(Method::PATCH, &format!("{coll}/{name}?fieldManager=kubectl-client-side-apply&fieldValidation=Strict"), Some(&patch), "application/json", "application/strategic-merge-patch+json")
                            .await?;
                        for w in &r.warnings {
                            self.out.err(&format!("Warning: {w}\n"));
                        }
                        if r.status >= 400 {
                            self.out.err(&format!(
                                "{}\n",
                                server_error(&r.body, Some(("applying patch to", &file)))
                            ));
                            code = 1;
                        } else {
                            self.out.out(&format!("{label} configured\n"));
                        }
                        continue;
                    }
                    _ => {}
                }
            }
            let manager = if apply {
                "kubectl-client-side-apply"
            } else {
                "kubectl-create"
            };
            let r = self
                .request(
                    Method::POST,
                    &format!("{coll}?fieldManager={manager}&fieldValidation=Strict"),
                    Some(&doc),
                    "application/json",
                    "application/json",
                )
                .await?;
            for w in &r.warnings {
                self.out.err(&format!("Warning: {w}\n"));
            }
            if r.status >= 400 {
                self.out.err(&format!(
                    "{}\n",
                    server_error(&r.body, Some(("creating", &file)))
                ));
                code = 1;
            } else {
                let got = str_at(&r.body, "/metadata/name")
                    .unwrap_or(&name)
                    .to_owned();
                self.out
                    .out(&format!("{}/{got} created\n", res.kind_qualified()));
                // A new namespace gets its `default` ServiceAccount from a controller while
                // kube-apiserver's ServiceAccount admission waits for it (up to ten tries),
                // so the next document's pods in that namespace are admitted: let the
                // controllers run before the next document, as they would meanwhile.
                if res.plural == "namespaces" {
                    self.cluster.settle().await?;
                }
            }
        }
        self.cluster.settle().await?;
        Ok(code)
    }

    /// `kubectl create namespace|deployment|serviceaccount|configmap|secret generic NAME`: kubectl's
    /// generators build the object and POST it, as `create -f` would.
    async fn create_generated(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let mut args = a.positional.iter().map(String::as_str);
        let what = args.next().unwrap_or_default();
        if what == "secret" && args.next() != Some("generic") {
            return Err(Fail::Msg(
                "error: only `kubectl create secret generic` is simulated".into(),
            ));
        }
        let name = args.next().unwrap_or_default().to_owned();
        let literals = || -> R<Value> {
            let mut data = serde_json::Map::new();
            for lit in a.all("from-literal") {
                let Some((k, v)) = lit.split_once('=').filter(|(k, _)| !k.is_empty()) else {
                    return Err(Fail::Msg(format!(
                        "error: invalid literal source {lit}, expected key=value"
                    )));
                };
                data.insert(k.to_owned(), json!(v));
            }
            Ok(Value::Object(data))
        };
        let (plural, doc) = match what {
            "namespace" | "ns" => (
                "namespaces",
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
            ),
            "deployment" | "deploy" => ("deployments", create_deployment(&name, a)?),
            "serviceaccount" | "sa" => (
                "serviceaccounts",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}),
            ),
            "configmap" | "cm" => (
                "configmaps",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": literals()?}),
            ),
            "secret" => {
                use base64::Engine as _;
                let plain = literals()?;
                let data: serde_json::Map<String, Value> = plain
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| {
                        let text = v.as_str().unwrap_or_default();
                        (
                            k.clone(),
                            json!(base64::engine::general_purpose::STANDARD.encode(text)),
                        )
                    })
                    .collect();
                let ty = a.get("type").unwrap_or("Opaque");
                (
                    "secrets",
                    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "type": ty, "data": data}),
                )
            }
            _ => {
                return Err(Fail::Msg(format!(
                    "error: Unexpected args: [{}]\nSee 'kubectl create -h' for help and examples",
                    a.positional.join(" ")
                )))
            }
        };
        if name.is_empty() {
            return Err(Fail::Msg(
                "error: exactly one NAME is required, got 0".into(),
            ));
        }
        let res = resources::find(plural).ok_or_else(|| format!("error: no {plural}"))?;
        let coll = res.collection_path(res.namespaced.then_some(ns.as_str()));
        let r = self
            .request(
                Method::POST,
                &format!("{coll}?fieldManager=kubectl-create&fieldValidation=Strict"),
                Some(&doc),
                "application/json",
                "application/json",
            )
            .await?;
        let code = if r.status >= 400 {
            self.out.err(&format!("{}\n", server_error(&r.body, None)));
            1
        } else {
            self.out
                .out(&format!("{}/{name} created\n", res.kind_qualified()));
            0
        };
        self.cluster.settle().await?;
        Ok(code)
    }

    async fn delete(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let mut victims: Vec<(&'static Resource, Option<String>, String)> = Vec::new();
        if !a.all("filename").is_empty() {
            for (_, doc) in self.read_manifests(a)? {
                victims.push(self.doc_target(&doc, a)?);
            }
        } else {
            let targets = self.targets(&a.positional)?;
            for (res, name) in targets {
                let nsq = res.namespaced.then(|| ns.clone());
                match name {
                    Some(n) => victims.push((res, nsq, n)),
                    None => {
                        if a.get("selector").is_none() && !a.on("all") {
                            return Err(Fail::Msg(
                                "error: resource(s) were provided, but no name was specified"
                                    .into(),
                            ));
                        }
                        let r = self
                            .get_json(&Self::list_path(res, nsq.as_deref(), a))
                            .await?;
                        for o in r
                            .body
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                        {
                            victims.push((
                                res,
                                nsq.clone(),
                                str_at(&o, "/metadata/name").unwrap_or_default().to_owned(),
                            ));
                        }
                    }
                }
            }
            if victims.is_empty() {
                self.out
                    .err(&format!("No resources found in {ns} namespace.\n"));
                return Ok(0);
            }
        }
        let mut code = 0;
        let grace = a.get("grace-period").and_then(|g| g.parse::<i64>().ok());
        let mut waiting = Vec::new();
        for (res, ns, name) in victims {
            let mut path = format!("{}/{}", res.collection_path(ns.as_deref()), name);
            if let Some(g) = grace {
                path.push_str(&format!("?gracePeriodSeconds={g}"));
            }
            let r = self
                .request(
                    Method::DELETE,
                    &path,
                    Some(&json!({"propagationPolicy": "Background"})),
                    "application/json",
                    "application/json",
                )
                .await?;
            if r.status == 404 && a.on("ignore-not-found") {
                continue;
            }
            if r.status >= 400 {
                self.out.err(&format!("{}\n", server_error(&r.body, None)));
                code = 1;
                continue;
            }
            let forced = if grace == Some(0) && a.on("force") {
                "force deleted"
            } else {
                "deleted"
            };
            match &ns {
                Some(ns) => self.out.out(&format!(
                    "{} \"{name}\" {forced} from {ns} namespace\n",
                    res.kind_qualified()
                )),
                None => self
                    .out
                    .out(&format!("{} \"{name}\" {forced}\n", res.kind_qualified())),
            }
            // The deleted object, or a Success Status naming its uid in `details`.
            let uid = str_at(&r.body, "/metadata/uid")
                .or_else(|| str_at(&r.body, "/details/uid"))
                .map(str::to_owned);
            waiting.push((res, ns, name, uid));
        }
        // --wait (default true): until every object is gone — the object with that uid, as
        // kubectl's wait does: one a controller recreates under the same name is another.
        if a.get("wait") != Some("false") {
            let deadline = self.cluster.now_ms() + 10 * 60 * 1000;
            loop {
                self.cluster.settle().await?;
                let mut remaining = false;
                for (res, ns, name, uid) in &waiting {
                    let r = self
                        .get_json(&format!("{}/{}", res.collection_path(ns.as_deref()), name))
                        .await?;
                    let same = uid.is_none() || str_at(&r.body, "/metadata/uid") == uid.as_deref();
                    remaining |= r.status == 200 && same;
                }
                if !remaining {
                    break;
                }
                match self.cluster.next_timer_ms() {
                    Some(t) if t <= deadline => self.cluster.advance_to(t).await?,
                    _ => break,
                }
            }
        }
        Ok(code)
    }

    async fn describe(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let targets = self.targets(&a.positional)?;
        let now = self.cluster.now_ms();
        let mut blocks = Vec::new();
        let mut code = 0;
        for (res, name) in targets {
            let nsq = res.namespaced.then_some(ns.as_str());
            let objs: Vec<Value> = match name {
                Some(n) => {
                    let r = self
                        .get_json(&format!("{}/{n}", res.collection_path(nsq)))
                        .await?;
                    if r.status >= 400 {
                        self.out.err(&format!("{}\n", server_error(&r.body, None)));
                        code = 1;
                        continue;
                    }
                    vec![r.body]
                }
                None => {
                    let r = self.get_json(&Self::list_path(res, nsq, a)).await?;
                    r.body
                        .get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                }
            };
            for obj in objs {
                let uid = str_at(&obj, "/metadata/uid").unwrap_or_default().to_owned();
                let ev_path = format!(
                    "/api/v1/namespaces/{}/events?fieldSelector=involvedObject.uid%3D{uid}",
                    str_at(&obj, "/metadata/namespace").unwrap_or(&ns)
                );
                let mut events: Vec<Value> = self
                    .get_json(&ev_path)
                    .await?
                    .body
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                events
                    .sort_by(|x, y| str_at(x, "/lastTimestamp").cmp(&str_at(y, "/lastTimestamp")));
                let text = match res.plural {
                    "pods" => describe::describe_pod(
                        &obj,
                        &describe::DescribeContext {
                            now_ms: now,
                            events: &events,
                            related: &[],
                        },
                    ),
                    "services" => {
                        let slices = self
                            .get_json(&format!("/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D{}", str_at(&obj, "/metadata/name").unwrap_or_default()))
                            .await?
                            .body;
                        describe::describe_service(
                            &obj,
                            Some(&slices),
                            &describe::DescribeContext {
                                now_ms: now,
                                events: &events,
                                related: &[],
                            },
                        )
                    }
                    "deployments" => {
                        let rs: Vec<Value> = self
                            .get_json(&format!("/apis/apps/v1/namespaces/{ns}/replicasets"))
                            .await?
                            .body
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|r| {
                                str_at(r, "/metadata/ownerReferences/0/uid") == Some(uid.as_str())
                            })
                            .collect();
                        let hash_of = |r: &Value| {
                            str_at(r, "/metadata/labels/pod-template-hash").map(str::to_owned)
                        };
                        let new_name = rs
                            .iter()
                            .max_by_key(|r| {
                                str_at(
                                    r,
                                    "/metadata/annotations/deployment.kubernetes.io~1revision",
                                )
                                .and_then(|s| s.parse::<i64>().ok())
                                .unwrap_or(0)
                            })
                            .and_then(hash_of);
                        let (new, old): (Vec<Value>, Vec<Value>) =
                            rs.into_iter().partition(|r| hash_of(r) == new_name);
                        describe::describe_deployment(
                            &obj,
                            &old,
                            new.first(),
                            &describe::DescribeContext {
                                now_ms: now,
                                events: &events,
                                related: &[],
                            },
                        )
                    }
                    "replicasets" => {
                        let pods: Vec<Value> = self
                            .get_json(&format!("/api/v1/namespaces/{ns}/pods"))
                            .await?
                            .body
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        describe::describe_replicaset(
                            &obj,
                            &describe::DescribeContext {
                                now_ms: now,
                                events: &events,
                                related: &pods,
                            },
                        )
                    }
                    "ingresses" => {
                        let ing_ns = str_at(&obj, "/metadata/namespace")
                            .unwrap_or(&ns)
                            .to_owned();
                        let items = |v: Value| -> Vec<Value> {
                            v.get("items")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default()
                        };
                        let services = items(
                            self.get_json(&format!("/api/v1/namespaces/{ing_ns}/services"))
                                .await?
                                .body,
                        );
                        let slices = items(
                            self.get_json(&format!(
                                "/apis/discovery.k8s.io/v1/namespaces/{ing_ns}/endpointslices"
                            ))
                            .await?
                            .body,
                        );
                        describe::describe_ingress(
                            &obj,
                            &services,
                            &slices,
                            &describe::DescribeContext {
                                now_ms: now,
                                events: &events,
                                related: &[],
                            },
                        )
                    }
                    other => {
                        return Err(Fail::Msg(format!(
                            "error: describe is not implemented for {other} in netsim's kubectl"
                        )))
                    }
                };
                blocks.push(text);
            }
        }
        self.out.out(&blocks.join("\n\n"));
        Ok(code)
    }

    /// `TYPE/NAME` or `TYPE NAME` → (resource, name).
    fn one_target(&self, pos: &[String]) -> R<(&'static Resource, String)> {
        let t = self.targets(pos)?;
        match t.as_slice() {
            [(res, Some(name))] => Ok((res, name.clone())),
            _ => Err(Fail::Msg("error: exactly one NAME is required".into())),
        }
    }

    async fn patch(
        &mut self,
        res: &Resource,
        ns: &str,
        name: &str,
        patch: &Value,
    ) -> R<Option<Value>> {
        let nsq = res.namespaced.then_some(ns);
        let r = self
            .request(
                Method::PATCH,
                &format!("{}/{name}", res.collection_path(nsq)),
                Some(patch),
                "application/json",
                "application/merge-patch+json",
            )
            .await?;
        if r.status >= 400 {
            self.out.err(&format!("{}\n", server_error(&r.body, None)));
            return Ok(None);
        }
        self.cluster.settle().await?;
        Ok(Some(r.body))
    }

    async fn scale(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let replicas: i64 = a
            .get("replicas")
            .and_then(|r| r.parse().ok())
            .ok_or_else(|| "error: required flag(s) \"replicas\" not set".to_owned())?;
        let (res, name) = self.one_target(&a.positional)?;
        match self
            .patch(res, &ns, &name, &json!({"spec": {"replicas": replicas}}))
            .await?
        {
            Some(_) => {
                self.out
                    .out(&format!("{}/{name} scaled\n", res.kind_qualified()));
                Ok(0)
            }
            None => Ok(1),
        }
    }

    async fn set_image(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        if a.positional.first().map(String::as_str) != Some("image") {
            return Err(Fail::Msg(
                "error: netsim's kubectl implements `set image` only".into(),
            ));
        }
        let rest = &a.positional[1..];
        let target_end = if rest.first().is_some_and(|r| r.contains('/')) {
            1
        } else {
            2
        };
        let (res, name) = self.one_target(&rest[..target_end.min(rest.len())])?;
        let nsq = res.namespaced.then_some(ns.as_str());
        let r = self
            .get_json(&format!("{}/{name}", res.collection_path(nsq)))
            .await?;
        if r.status >= 400 {
            self.out.err(&format!("{}\n", server_error(&r.body, None)));
            return Ok(1);
        }
        let mut containers = r
            .body
            .pointer("/spec/template/spec/containers")
            .cloned()
            .unwrap_or(json!([]));
        for pair in &rest[target_end.min(rest.len())..] {
            let (cname, image) = pair
                .split_once('=')
                .ok_or_else(|| format!("error: invalid image update: {pair}"))?;
            let mut found = false;
            for c in containers.as_array_mut().into_iter().flatten() {
                if cname == "*" || c.get("name").and_then(Value::as_str) == Some(cname) {
                    c["image"] = json!(image);
                    found = true;
                }
            }
            if !found {
                return Err(Fail::Msg(format!(
                    "error: unable to find container named \"{cname}\""
                )));
            }
        }
        match self
            .patch(
                res,
                &ns,
                &name,
                &json!({"spec": {"template": {"spec": {"containers": containers}}}}),
            )
            .await?
        {
            Some(_) => {
                self.out
                    .out(&format!("{}/{name} image updated\n", res.kind_qualified()));
                Ok(0)
            }
            None => Ok(1),
        }
    }

    async fn rollout(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        if a.positional.first().map(String::as_str) != Some("status") {
            return Err(Fail::Msg(
                "error: netsim's kubectl implements `rollout status` only".into(),
            ));
        }
        let (res, name) = self.one_target(&a.positional[1..])?;
        let timeout = a
            .get("timeout")
            .and_then(parse_duration_ms)
            .unwrap_or(10 * 60 * 1000);
        let deadline = self.cluster.now_ms() + timeout;
        let mut last = String::new();
        loop {
            self.cluster.settle().await?;
            let r = self
                .get_json(&format!("{}/{name}", res.collection_path(Some(&ns))))
                .await?;
            if r.status >= 400 {
                self.out.err(&format!("{}\n", server_error(&r.body, None)));
                return Ok(1);
            }
            let d = &r.body;
            let n = |p: &str| d.pointer(p).and_then(Value::as_i64).unwrap_or(0);
            let (want, updated, replicas, available) = (
                n("/spec/replicas"),
                n("/status/updatedReplicas"),
                n("/status/replicas"),
                n("/status/availableReplicas"),
            );
            let observed = n("/status/observedGeneration") >= n("/metadata/generation");
            // kubectl's StatefulSet and DaemonSet status viewers.
            let done_or_wait: Option<Result<String, String>> = match res.plural {
                "statefulsets" => Some(if !observed {
                    Err("Waiting for statefulset spec update to be observed...\n".to_owned())
                } else if n("/status/readyReplicas") < want {
                    Err(format!(
                        "Waiting for {} pods to be ready...\n",
                        want - n("/status/readyReplicas")
                    ))
                } else if let Some(rolling) = d
                    .pointer("/spec/updateStrategy/rollingUpdate")
                    .filter(|_| str_at(d, "/spec/updateStrategy/type") == Some("RollingUpdate"))
                {
                    // The apiserver defaults `partition: 0`, so this is the branch a
                    // RollingUpdate StatefulSet takes.
                    let partition = rolling.get("partition").and_then(Value::as_i64);
                    match partition {
                        Some(p) if updated < want - p => Err(format!(
                            "Waiting for partitioned roll out to finish: {updated} out of {} new pods have been updated...\n",
                            want - p
                        )),
                        _ => Ok(format!(
                            "partitioned roll out complete: {updated} new pods have been updated...\n"
                        )),
                    }
                } else if str_at(d, "/status/updateRevision")
                    != str_at(d, "/status/currentRevision")
                {
                    Err(format!("waiting for statefulset rolling update to complete {updated} pods at revision {}...\n", str_at(d, "/status/updateRevision").unwrap_or_default()))
                } else {
                    Ok(format!(
                        "statefulset rolling update complete {} pods at revision {}...\n",
                        n("/status/currentReplicas"),
                        str_at(d, "/status/currentRevision").unwrap_or_default()
                    ))
                }),
                "daemonsets" => {
                    let desired = n("/status/desiredNumberScheduled");
                    let upd = n("/status/updatedNumberScheduled");
                    Some(if !observed {
                        Err("Waiting for daemon set spec update to be observed...\n".to_owned())
                    } else if upd < desired {
                        Err(format!("Waiting for daemon set \"{name}\" rollout to finish: {upd} out of {desired} new pods have been updated...\n"))
                    } else if n("/status/numberAvailable") < desired {
                        Err(format!("Waiting for daemon set \"{name}\" rollout to finish: {} of {desired} updated pods are available...\n", n("/status/numberAvailable")))
                    } else {
                        Ok(format!("daemon set \"{name}\" successfully rolled out\n"))
                    })
                }
                _ => None,
            };
            let msg = if let Some(r) = done_or_wait {
                match r {
                    Ok(done) => {
                        self.out.out(&done);
                        return Ok(0);
                    }
                    Err(wait) => wait,
                }
            } else if !observed {
                "Waiting for deployment spec update to be observed...\n".to_owned()
            } else if updated < want {
                format!("Waiting for deployment \"{name}\" rollout to finish: {updated} out of {want} new replicas have been updated...\n")
            } else if replicas > updated {
                format!("Waiting for deployment \"{name}\" rollout to finish: {} old replicas are pending termination...\n", replicas - updated)
            } else if available < updated {
                format!("Waiting for deployment \"{name}\" rollout to finish: {available} of {updated} updated replicas are available...\n")
            } else {
                self.out
                    .out(&format!("deployment \"{name}\" successfully rolled out\n"));
                return Ok(0);
            };
            if msg != last {
                self.out.out(&msg);
                last = msg;
            }
            match self.cluster.next_timer_ms() {
                Some(t) if t <= deadline => self.cluster.advance_to(t).await?,
                _ => {
                    self.cluster.advance_to(deadline).await?;
                    return Err(Fail::Msg(
                        "error: timed out waiting for the condition".into(),
                    ));
                }
            }
        }
    }

    /// `kubectl wait` as `RunWait` does it: the objects are resolved once, then visited one
    /// at a time in list order (by name), each waited on until its condition holds, so
    /// `condition met` lines come out in that order, not in the order the objects got
    /// there. The timeout is one deadline for the whole command: once it has passed, every
    /// object still to be visited fails too (its informer cannot sync on an expired
    /// context), and the errors print at the end, as the visitor aggregates them.
    async fn wait(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let cond = a
            .get("for")
            .ok_or_else(|| "error: --for must be set".to_owned())?
            .to_owned();
        let delete = cond == "delete";
        let wanted = match cond.strip_prefix("condition=") {
            Some(c) => Some(c.split_once('=').unwrap_or((c, "True"))),
            None if delete => None,
            None => {
                return Err(Fail::Msg(format!(
                    "error: unrecognized condition: \"{cond}\""
                )))
            }
        };
        let timeout = a
            .get("timeout")
            .and_then(parse_duration_ms)
            .unwrap_or(30_000);
        let deadline = self.cluster.now_ms() + timeout;
        let targets = self.targets(&a.positional)?;
        self.cluster.settle().await?;
        let mut errors: Vec<String> = Vec::new();
        // (resource, namespace, name) in the order kubectl's visitor yields them.
        let mut objects: Vec<(&'static Resource, Option<String>, String)> = Vec::new();
        for (res, name) in &targets {
            let nsq = (res.namespaced && !(name.is_none() && a.on("all-namespaces")))
                .then_some(ns.as_str());
            match name {
                Some(n) => {
                    let r = self
                        .get_json(&format!("{}/{n}", res.collection_path(nsq)))
                        .await?;
                    if r.status == 404 && delete {
                        continue;
                    }
                    if r.status >= 400 {
                        errors.push(server_error(&r.body, None));
                        continue;
                    }
                    objects.push((*res, nsq.map(str::to_owned), n.clone()));
                }
                None => {
                    let r = self.get_json(&Self::list_path(res, nsq, a)).await?;
                    for o in r
                        .body
                        .get("items")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        objects.push((
                            *res,
                            str_at(o, "/metadata/namespace").map(str::to_owned),
                            str_at(o, "/metadata/name").unwrap_or_default().to_owned(),
                        ));
                    }
                }
            }
        }
        if objects.is_empty() && errors.is_empty() && !delete {
            return Err(Fail::Msg("error: no matching resources found".into()));
        }
        let mut expired = false;
        for (res, ons, name) in objects {
            let timed_out = if timeout == 0 {
                format!("condition not met for {}/{name}", res.qualified())
            } else {
                format!(
                    "timed out waiting for the condition on {}/{name}",
                    res.plural
                )
            };
            if expired {
                errors.push(timed_out);
                continue;
            }
            let path = format!("{}/{name}", res.collection_path(ons.as_deref()));
            loop {
                self.cluster.settle().await?;
                let r = self.get_json(&path).await?;
                let met = if r.status == 404 && delete {
                    true
                } else if r.status >= 400 {
                    errors.push(server_error(&r.body, None));
                    break;
                } else {
                    wanted.is_some_and(|(ty, want)| condition_is(&r.body, ty, want))
                };
                if met {
                    self.out
                        .out(&format!("{}/{name} condition met\n", res.kind_qualified()));
                    break;
                }
                match self.cluster.next_timer_ms() {
                    Some(t) if t <= deadline => self.cluster.advance_to(t).await?,
                    _ => {
                        self.cluster.advance_to(deadline).await?;
                        errors.push(timed_out);
                        // `--timeout=0` checks each object once; otherwise the deadline
                        // is shared and has now passed for everything after this one.
                        expired = timeout > 0;
                        break;
                    }
                }
            }
        }
        // cmdutil.CheckErr: a lone error gets `error: ` (unless it is a server Status,
        // printed as `Error from server ...`); an aggregate prints one bare line each.
        match errors.as_slice() {
            [one] if !one.starts_with("Error from server") => {
                self.out.err(&format!("error: {one}\n"));
            }
            _ => {
                for e in &errors {
                    self.out.err(&format!("{e}\n"));
                }
            }
        }
        Ok(i32::from(!errors.is_empty()))
    }

    async fn label(&mut self, a: &Args) -> R<i32> {
        let ns = self.namespace(a);
        let split = a
            .positional
            .iter()
            .position(|p| p.contains('=') || p.ends_with('-'))
            .unwrap_or(a.positional.len());
        let (res, name) = self.one_target(&a.positional[..split])?;
        let nsq = res.namespaced.then_some(ns.as_str());
        let r = self
            .get_json(&format!("{}/{name}", res.collection_path(nsq)))
            .await?;
        if r.status >= 400 {
            self.out.err(&format!("{}\n", server_error(&r.body, None)));
            return Ok(1);
        }
        let mut labels = serde_json::Map::new();
        for l in &a.positional[split..] {
            if let Some(k) = l.strip_suffix('-') {
                labels.insert(k.to_owned(), Value::Null);
            } else if let Some((k, v)) = l.split_once('=') {
                if let Some(old) = r
                    .body
                    .pointer("/metadata/labels")
                    .and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                {
                    if old != v && !a.on("overwrite") {
                        return Err(Fail::Msg(format!(
                            "error: '{k}' already has a value ({old}), and --overwrite is false"
                        )));
                    }
                }
                labels.insert(k.to_owned(), json!(v));
            }
        }
        match self
            .patch(res, &ns, &name, &json!({"metadata": {"labels": labels}}))
            .await?
        {
            Some(_) => {
                let verb = if labels.values().all(Value::is_null) {
                    "unlabeled"
                } else {
                    "labeled"
                };
                self.out
                    .out(&format!("{}/{name} {verb}\n", res.kind_qualified()));
                Ok(0)
            }
            None => Ok(1),
        }
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `120s`, `2m`, `1h30m`, `500ms`, bare seconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n * 1000);
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = num.parse().ok()?;
        num.clear();
        total += n * match unit.as_str() {
            "ms" => 1.0,
            "s" => 1000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            "d" => 86_400_000.0,
            _ => return None,
        };
    }
    if !num.is_empty() {
        return None;
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn flags_in_every_spelling() {
        let a = parse_args(&argv(
            "pod -owide -n kube-system --selector=app=x -A --show-labels",
        ))
        .unwrap();
        assert_eq!(a.get("output"), Some("wide"));
        assert_eq!(a.get("namespace"), Some("kube-system"));
        assert_eq!(a.get("selector"), Some("app=x"));
        assert!(a.on("all-namespaces") && a.on("show-labels"));
        assert_eq!(a.positional, vec!["pod"]);
        assert!(parse_args(&argv("pod --bogus")).is_err());
    }

    #[test]
    fn yaml_quotes_like_go_yaml() {
        let v = json!({"metadata": {"resourceVersion": "109", "creationTimestamp": "2020-10-27T10:00:00Z", "name": "x"}, "items": ["1"]});
        assert_eq!(
            to_yaml(&v),
            "items:\n- \"1\"\nmetadata:\n  creationTimestamp: \"2020-10-27T10:00:00Z\"\n  name: x\n  resourceVersion: \"109\"\n"
        );
        // Strings that would read back as another type are double-quoted; the others that
        // cannot be plain keep go-yaml's single quotes.
        let v = json!({"a": "Created container: web", "b": "true", "c": "0x1F", "d": "1:20",
            "e": "[x]", "f": "yes", "g": "1e3", "h": "", "i": "web-1", "j": "2020-10-27"});
        assert_eq!(
            to_yaml(&v),
            "a: 'Created container: web'\nb: \"true\"\nc: \"0x1F\"\nd: \"1:20\"\ne: '[x]'\nf: \"yes\"\ng: \"1e3\"\nh: \"\"\ni: web-1\nj: \"2020-10-27\"\n"
        );
    }

    #[test]
    fn yaml_folds_long_scalars_past_column_80_as_go_yaml() {
        // kube-root-ca.crt's description as `kubectl get cm -o yaml` prints it (a published
        // dump of a real one, troubleshoot.sh's docs, folds it exactly so).
        let v = json!({"metadata": {"annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}}});
        assert_eq!(
            to_yaml(&v),
            "metadata:\n  annotations:\n    kubernetes.io/description: Contains a CA bundle that can be used to verify the\n      kube-apiserver when using internal endpoints such as the internal service IP\n      or kubernetes.default.svc. No other usage is guaranteed across distributions\n      of Kubernetes clusters.\n"
        );
        // A block scalar's lines are copied as they are, however long.
        let long = vec!["x"; 60].join(" ");
        let v = json!({"data": {"k": format!("{long}\n{long}\n")}});
        assert_eq!(
            to_yaml(&v),
            format!("data:\n  k: |\n    {long}\n    {long}\n")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("120s"), Some(120_000));
        assert_eq!(parse_duration_ms("1h30m"), Some(5_400_000));
        assert_eq!(parse_duration_ms("62m"), Some(3_720_000));
        assert_eq!(parse_duration_ms("500ms"), Some(500));
        assert_eq!(parse_duration_ms("5"), Some(5_000));
        assert_eq!(parse_duration_ms("x"), None);
    }

    #[test]
    fn last_applied_is_sorted_compact_json_with_newline() {
        let d = json!({"kind": "Service", "apiVersion": "v1", "metadata": {"name": "x"}});
        assert_eq!(
            last_applied(&d, Some("default")),
            "{\"apiVersion\":\"v1\",\"kind\":\"Service\",\"metadata\":{\"annotations\":{},\"name\":\"x\",\"namespace\":\"default\"}}\n"
        );
        // Cluster-scoped: no namespace; other annotations kept, the annotation itself not.
        let d = json!({"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": "lab",
            "annotations": {"a": "1", "kubectl.kubernetes.io/last-applied-configuration": "{}"}}});
        assert_eq!(
            last_applied(&d, None),
            "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"annotations\":{\"a\":\"1\"},\"name\":\"lab\"}}\n"
        );
    }
}
