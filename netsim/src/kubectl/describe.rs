//! kubectl describe: the text of kubectl `pkg/describe/describe.go` for pods, services, ingresses,
//! deployments and replicasets, rendered from plain JSON objects. Lines are written with the
//! same prefix-writer levels and tabs as upstream, then aligned by a Go tabwriter with
//! describe's parameters (minwidth 0, tabwidth 8, padding 2, `' '`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::tabwriter::{escape_terminal, format_labels, format_text, go_sprint, KUBECTL_DESCRIBE};

/// What describe needs besides the object itself.
#[derive(Debug, Clone, Copy)]
pub struct DescribeContext<'a> {
    /// "Now" on the cluster's virtual clock, in Unix milliseconds (ages are relative to it).
    pub now_ms: i64,
    /// core/v1 Events whose involvedObject is this object.
    pub events: &'a [Value],
    /// Related objects: for `describe_replicaset`, the pods in its namespace (counted by phase
    /// when controlled by the ReplicaSet's uid). Unused by the other describers.
    pub related: &'a [Value],
}

/// The annotation kubectl never shows (describe.go `skipAnnotations`).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// describe.go `maxAnnotationLen`.
const MAX_ANNOTATION_LEN: usize = 140;

/// Collects lines like describe.go's `prefixWriter` (two spaces per level).
struct Prefix {
    buf: String,
}

impl Prefix {
    fn new() -> Self {
        Self { buf: String::new() }
    }

    fn w(&mut self, level: usize, text: &str) {
        let line = format!("{}{text}", "  ".repeat(level));
        self.buf.push_str(&escape_terminal(&line));
    }

    fn finish(self) -> String {
        format_text(&self.buf, KUBECTL_DESCRIBE)
    }
}

// ---------------------------------------------------------------------------------------------
// small JSON accessors

fn get<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(*k))
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    get(v, path).and_then(Value::as_str).unwrap_or_default()
}

fn i(v: &Value, path: &[&str]) -> i64 {
    get(v, path).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    get(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn b(v: &Value, path: &[&str]) -> bool {
    get(v, path).and_then(Value::as_bool).unwrap_or(false)
}

/// Go `%v` of an optional value, printing what Go's zero value would (empty).
fn v(val: Option<&Value>) -> String {
    match val {
        None | Some(Value::Null) => String::new(),
        Some(x) => go_sprint(x),
    }
}

/// describe.go `printBool`.
fn print_bool(x: bool) -> &'static str {
    if x {
        "True"
    } else {
        "False"
    }
}

fn or_none(x: &str) -> &str {
    if x.is_empty() {
        "<none>"
    } else {
        x
    }
}

// ---------------------------------------------------------------------------------------------
// time

fn parse_ms(ts: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Go `time.RFC1123Z` (`Mon, 02 Jan 2006 15:04:05 -0700`). Kubernetes converts to the local zone
/// of the kubectl host; the simulated host is UTC. Absent times print Go's zero time.
pub fn rfc1123z(ts: Option<&str>) -> String {
    match ts.and_then(|t| DateTime::parse_from_rfc3339(t).ok()) {
        Some(t) => t
            .with_timezone(&Utc)
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
        None => "Mon, 01 Jan 0001 00:00:00 +0000".to_string(),
    }
}

/// apimachinery `duration.HumanDuration` for a duration in milliseconds.
pub fn human_duration(ms: i64) -> String {
    apiserver::table::human_duration(ms)
}

/// describe.go `translateTimestampSince`: `<unknown>` for an absent timestamp.
fn since(ts: Option<&Value>, now_ms: i64) -> String {
    match ts.and_then(Value::as_str).and_then(parse_ms) {
        Some(t) => human_duration(now_ms - t),
        None => "<unknown>".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// shared sections

/// describe.go `printLabelsMultilineWithIndent` (labels, node selectors).
fn labels_multiline(w: &mut Prefix, title: &str, labels: Option<&Value>) {
    w.w(0, &format!("{title}:\t"));
    let mut pairs: Vec<(&str, String)> = labels
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, x)| (k.as_str(), v(Some(x)))).collect())
        .unwrap_or_default();
    if pairs.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    pairs.sort();
    for (n, (k, val)) in pairs.iter().enumerate() {
        if n != 0 {
            w.w(0, "\t");
        }
        w.w(0, &format!("{k}={val}\n"));
    }
}

/// describe.go `printAnnotationsMultiline`.
fn annotations_multiline(w: &mut Prefix, title: &str, ann: Option<&Value>) {
    w.w(0, &format!("{title}:\t"));
    let mut pairs: Vec<(&str, String)> = ann
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| k.as_str() != LAST_APPLIED)
                .map(|(k, x)| (k.as_str(), v(Some(x))))
                .collect()
        })
        .unwrap_or_default();
    if pairs.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    pairs.sort();
    for (n, (k, val)) in pairs.iter().enumerate() {
        if n != 0 {
            w.w(0, "\t");
        }
        let value = val.strip_suffix('\n').unwrap_or(val);
        if value.len() + k.len() + 2 > MAX_ANNOTATION_LEN || value.contains('\n') {
            w.w(0, &format!("{k}:\n"));
            for line in value.split('\n') {
                w.w(
                    0,
                    &format!("\t  {}\n", shorten(line, MAX_ANNOTATION_LEN - 2)),
                );
            }
        } else {
            w.w(0, &format!("{k}: {value}\n"));
        }
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}...", &s[..cut])
    } else {
        s.to_string()
    }
}

/// describe.go `printTolerationsMultilineWithIndent`.
fn tolerations_multiline(w: &mut Prefix, title: &str, tols: &[Value]) {
    w.w(0, &format!("{title}:\t"));
    if tols.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    let mut sorted: Vec<&Value> = tols.iter().collect();
    sorted.sort_by(|a, c| s(a, &["key"]).cmp(s(c, &["key"])));
    for (n, t) in sorted.iter().enumerate() {
        if n != 0 {
            w.w(0, "\t");
        }
        let (key, value, effect) = (s(t, &["key"]), s(t, &["value"]), s(t, &["effect"]));
        let mut line = key.to_string();
        if !value.is_empty() {
            line.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            line.push_str(&format!(":{effect}"));
        }
        if s(t, &["operator"]) == "Exists" && value.is_empty() {
            if !key.is_empty() || !effect.is_empty() {
                line.push_str(" op=Exists");
            } else {
                line.push_str("op=Exists");
            }
        }
        if let Some(secs) = get(t, &["tolerationSeconds"]).and_then(Value::as_i64) {
            line.push_str(&format!(" for {secs}s"));
        }
        w.w(0, &format!("{line}\n"));
    }
}

/// describe.go `DescribeEvents`: `Events:  <none>` or a table sorted by lastTimestamp.
fn describe_events(w: &mut Prefix, ctx: &DescribeContext) {
    if ctx.events.is_empty() {
        w.w(0, "Events:\t<none>\n");
        return;
    }
    let mut events: Vec<&Value> = ctx.events.iter().collect();
    events.sort_by_key(|e| parse_ms(s(e, &["lastTimestamp"])).unwrap_or(i64::MIN));
    w.w(0, "Events:\n  Type\tReason\tAge\tFrom\tMessage\n");
    w.w(1, "----\t------\t----\t----\t-------\n");
    for e in events {
        let first = match get(e, &["eventTime"]).filter(|t| !t.is_null()) {
            Some(t) => since(Some(t), ctx.now_ms),
            None => since(get(e, &["firstTimestamp"]), ctx.now_ms),
        };
        let count = i(e, &["count"]);
        let interval = if let Some(series) = get(e, &["series"]).filter(|x| !x.is_null()) {
            format!(
                "{} (x{} over {first})",
                since(get(series, &["lastObservedTime"]), ctx.now_ms),
                i(series, &["count"])
            )
        } else if count > 1 {
            format!(
                "{} (x{count} over {first})",
                since(get(e, &["lastTimestamp"]), ctx.now_ms)
            )
        } else {
            first
        };
        let mut source = s(e, &["source", "component"]);
        if source.is_empty() {
            source = s(e, &["reportingController"]);
        }
        w.w(
            1,
            &format!(
                "{}\t{}\t{interval}\t{source}\t{}\n",
                s(e, &["type"]),
                s(e, &["reason"]),
                s(e, &["message"]).trim()
            ),
        );
    }
}

/// `metav1.LabelSelectorAsSelector(sel).String()`: requirements sorted by key.
fn selector_string(sel: Option<&Value>) -> String {
    let Some(sel) = sel.filter(|x| !x.is_null()) else {
        return String::new();
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(m) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, x) in m {
            reqs.push((k.to_string(), format!("{k}={}", v(Some(x)))));
        }
    }
    for e in arr(sel, &["matchExpressions"]) {
        let key = s(e, &["key"]);
        let mut vals: Vec<String> = arr(e, &["values"]).iter().map(|x| v(Some(x))).collect();
        vals.sort();
        vals.dedup();
        let text = match s(e, &["operator"]) {
            "In" => format!("{key} in ({})", vals.join(",")),
            "NotIn" => format!("{key} notin ({})", vals.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key.to_string(), text));
    }
    reqs.sort_by(|a, c| a.0.cmp(&c.0));
    reqs.into_iter().map(|r| r.1).collect::<Vec<_>>().join(",")
}

/// `metav1.FormatLabelSelector`: like `selector_string` but `<none>` when empty.
fn format_label_selector(sel: Option<&Value>) -> String {
    let text = selector_string(sel);
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// IntOrString `String()`.
fn int_or_string(x: Option<&Value>) -> String {
    v(x)
}

// ---------------------------------------------------------------------------------------------
// containers and pod templates

fn describe_containers(
    w: &mut Prefix,
    label: &str,
    containers: &[Value],
    statuses: &[Value],
    pod: Option<&Value>,
    space: &str,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.w(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let name = s(c, &["name"]);
        let status = statuses.iter().find(|st| s(st, &["name"]) == name);
        w.w(1, &format!("{name_indent}{name}:\n"));
        if let Some(st) = status {
            w.w(2, &format!("Container ID:\t{}\n", s(st, &["containerID"])));
        }
        w.w(2, &format!("Image:\t{}\n", s(c, &["image"])));
        if let Some(st) = status {
            w.w(2, &format!("Image ID:\t{}\n", s(st, &["imageID"])));
        }
        let ports = arr(c, &["ports"]);
        let proto = |p: &Value| {
            let pr = s(p, &["protocol"]);
            if pr.is_empty() { "TCP" } else { pr }.to_string()
        };
        let port_str = ports
            .iter()
            .map(|p| format!("{}/{}", i(p, &["containerPort"]), proto(p)))
            .collect::<Vec<_>>()
            .join(", ");
        if port_str.contains(',') {
            w.w(2, &format!("Ports:\t{port_str}\n"));
        } else {
            w.w(2, &format!("Port:\t{}\n", or_none(&port_str)));
        }
        let host_str = ports
            .iter()
            .map(|p| format!("{}/{}", i(p, &["hostPort"]), proto(p)))
            .collect::<Vec<_>>()
            .join(", ");
        if host_str.contains(',') {
            w.w(2, &format!("Host Ports:\t{host_str}\n"));
        } else {
            w.w(2, &format!("Host Port:\t{}\n", or_none(&host_str)));
        }
        if let Some(sp) = get(c, &["securityContext", "seccompProfile"]) {
            w.w(2, &format!("SeccompProfile:\t{}\n", s(sp, &["type"])));
            if s(sp, &["type"]) == "Localhost" {
                w.w(
                    3,
                    &format!("LocalhostProfile:\t{}\n", s(sp, &["localhostProfile"])),
                );
            }
        }
        for (key, title) in [("command", "Command"), ("args", "Args")] {
            let items = arr(c, &[key]);
            if !items.is_empty() {
                w.w(2, &format!("{title}:\n"));
                for item in items {
                    for line in v(Some(item)).split('\n') {
                        w.w(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(st) = status {
            describe_status(w, "State", get(st, &["state"]));
            if get(st, &["lastState", "terminated"]).is_some() {
                describe_status(w, "Last State", get(st, &["lastState"]));
            }
            w.w(2, &format!("Ready:\t{}\n", print_bool(b(st, &["ready"]))));
            w.w(
                2,
                &format!("Restart Count:\t{}\n", i(st, &["restartCount"])),
            );
        }
        describe_resources(w, get(c, &["resources"]), 2);
        for (key, title) in [
            ("livenessProbe", "Liveness"),
            ("readinessProbe", "Readiness"),
            ("startupProbe", "Startup"),
        ] {
            if let Some(p) = get(c, &[key]).filter(|x| !x.is_null()) {
                w.w(2, &format!("{title}:\t{}\n", describe_probe(p)));
            }
        }
        let env_from = arr(c, &["envFrom"]);
        if !env_from.is_empty() {
            w.w(2, "Environment Variables from:\n");
            for e in env_from {
                let (from, r) = if let Some(r) = get(e, &["configMapRef"]) {
                    ("ConfigMap", r)
                } else if let Some(r) = get(e, &["secretRef"]) {
                    ("Secret", r)
                } else {
                    ("", &Value::Null)
                };
                let optional = b(r, &["optional"]);
                let prefix = s(e, &["prefix"]);
                let name = s(r, &["name"]);
                if prefix.is_empty() {
                    w.w(3, &format!("{name}\t{from}\tOptional: {optional}\n"));
                } else {
                    w.w(
                        3,
                        &format!("{name}\t{from} with prefix '{prefix}'\tOptional: {optional}\n"),
                    );
                }
            }
        }
        describe_env(w, c, pod);
        let mounts = arr(c, &["volumeMounts"]);
        let none = if mounts.is_empty() { "\t<none>" } else { "" };
        w.w(2, &format!("Mounts:{none}\n"));
        let mut sorted: Vec<&Value> = mounts.iter().collect();
        sorted.sort_by(|a, c| s(a, &["mountPath"]).cmp(s(c, &["mountPath"])));
        for m in sorted {
            let mut flags = vec![if b(m, &["readOnly"]) { "ro" } else { "rw" }.to_string()];
            let sub = s(m, &["subPath"]);
            if !sub.is_empty() {
                flags.push(format!("path={}", go_quote(sub)));
            }
            w.w(
                3,
                &format!(
                    "{} from {} ({})\n",
                    s(m, &["mountPath"]),
                    s(m, &["name"]),
                    flags.join(",")
                ),
            );
        }
    }
}

fn go_quote(x: &str) -> String {
    format!("{x:?}")
}

/// describe.go `describeStatus`.
fn describe_status(w: &mut Prefix, name: &str, state: Option<&Value>) {
    let state = state.unwrap_or(&Value::Null);
    if let Some(r) = get(state, &["running"]) {
        w.w(2, &format!("{name}:\tRunning\n"));
        w.w(
            3,
            &format!(
                "Started:\t{}\n",
                rfc1123z(get(r, &["startedAt"]).and_then(Value::as_str))
            ),
        );
    } else if let Some(wt) = get(state, &["waiting"]) {
        w.w(2, &format!("{name}:\tWaiting\n"));
        if !s(wt, &["reason"]).is_empty() {
            w.w(3, &format!("Reason:\t{}\n", s(wt, &["reason"])));
        }
    } else if let Some(t) = get(state, &["terminated"]) {
        w.w(2, &format!("{name}:\tTerminated\n"));
        if !s(t, &["reason"]).is_empty() {
            w.w(3, &format!("Reason:\t{}\n", s(t, &["reason"])));
        }
        if !s(t, &["message"]).is_empty() {
            w.w(3, &format!("Message:\t{}\n", s(t, &["message"])));
        }
        w.w(3, &format!("Exit Code:\t{}\n", i(t, &["exitCode"])));
        if i(t, &["signal"]) > 0 {
            w.w(3, &format!("Signal:\t{}\n", i(t, &["signal"])));
        }
        w.w(
            3,
            &format!(
                "Started:\t{}\n",
                rfc1123z(get(t, &["startedAt"]).and_then(Value::as_str))
            ),
        );
        w.w(
            3,
            &format!(
                "Finished:\t{}\n",
                rfc1123z(get(t, &["finishedAt"]).and_then(Value::as_str))
            ),
        );
    } else {
        w.w(2, &format!("{name}:\tWaiting\n"));
    }
}

/// describe.go `describeResources`; quantities are printed as stored (the apiserver keeps
/// them canonical).
fn describe_resources(w: &mut Prefix, res: Option<&Value>, level: usize) {
    let Some(res) = res else { return };
    for (key, title) in [("limits", "Limits"), ("requests", "Requests")] {
        if let Some(m) = res
            .get(key)
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
        {
            w.w(level, &format!("{title}:\n"));
            for (name, q) in m {
                w.w(level + 1, &format!("{name}:\t{}\n", v(Some(q))));
            }
        }
    }
}

/// describe.go `DescribeProbe`.
fn describe_probe(p: &Value) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        i(p, &["initialDelaySeconds"]),
        i(p, &["timeoutSeconds"]),
        i(p, &["periodSeconds"]),
        i(p, &["successThreshold"]),
        i(p, &["failureThreshold"])
    );
    if let Some(e) = get(p, &["exec"]) {
        let cmd: Vec<String> = arr(e, &["command"]).iter().map(|x| v(Some(x))).collect();
        return format!("exec [{}] {attrs}", cmd.join(" "));
    }
    if let Some(h) = get(p, &["httpGet"]) {
        let port = int_or_string(get(h, &["port"]));
        let host = s(h, &["host"]);
        let host_port = if port.is_empty() {
            host.to_string()
        } else if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let scheme = s(h, &["scheme"]).to_lowercase();
        let mut url = String::new();
        if !scheme.is_empty() {
            url.push_str(&scheme);
            url.push(':');
        }
        if !scheme.is_empty() || !host_port.is_empty() {
            url.push_str("//");
            url.push_str(&host_port);
        }
        let path = s(h, &["path"]);
        if !path.is_empty() && !path.starts_with('/') && !host_port.is_empty() {
            url.push('/');
        }
        url.push_str(path);
        return format!("http-get {url} {attrs}");
    }
    if let Some(t) = get(p, &["tcpSocket"]) {
        return format!(
            "tcp-socket {}:{} {attrs}",
            s(t, &["host"]),
            int_or_string(get(t, &["port"]))
        );
    }
    if let Some(g) = get(p, &["grpc"]) {
        return format!(
            "grpc <pod>:{} {} {attrs}",
            i(g, &["port"]),
            s(g, &["service"])
        );
    }
    format!("unknown {attrs}")
}

/// describe.go `describeContainerEnvVars`.
fn describe_env(w: &mut Prefix, c: &Value, pod: Option<&Value>) {
    let env = arr(c, &["env"]);
    let none = if env.is_empty() { "\t<none>" } else { "" };
    w.w(2, &format!("Environment:{none}\n"));
    for e in env {
        let name = s(e, &["name"]);
        let Some(from) = get(e, &["valueFrom"]).filter(|x| !x.is_null()) else {
            for (n, line) in s(e, &["value"]).split('\n').enumerate() {
                if n == 0 {
                    w.w(3, &format!("{name}:\t{line}\n"));
                } else {
                    w.w(3, &format!("\t{line}\n"));
                }
            }
            continue;
        };
        if let Some(f) = get(from, &["fieldRef"]) {
            let path = s(f, &["fieldPath"]);
            let value = pod.map(|p| field_path_value(p, path)).unwrap_or_default();
            let api = s(f, &["apiVersion"]);
            w.w(3, &format!("{name}:\t{value} ({api}:{path})\n"));
        } else if let Some(r) = get(from, &["resourceFieldRef"]) {
            w.w(3, &format!("{name}:\t ({})\n", s(r, &["resource"])));
        } else if let Some(r) = get(from, &["secretKeyRef"]) {
            w.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                    s(r, &["key"]),
                    s(r, &["name"]),
                    b(r, &["optional"])
                ),
            );
        } else if let Some(r) = get(from, &["configMapKeyRef"]) {
            w.w(
                3,
                &format!(
                    "{name}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                    s(r, &["key"]),
                    s(r, &["name"]),
                    b(r, &["optional"])
                ),
            );
        }
    }
}

/// The downward-API field paths kubectl resolves for `Environment:` (fieldpath.ExtractFieldPathAsString).
fn field_path_value(pod: &Value, path: &str) -> String {
    for (prefix, key) in [
        ("metadata.labels['", "labels"),
        ("metadata.annotations['", "annotations"),
    ] {
        if let Some(k) = path.strip_prefix(prefix).and_then(|r| r.strip_suffix("']")) {
            return s(pod, &["metadata", key, k]).to_string();
        }
    }
    let p: Vec<&str> = path.split('.').collect();
    match path {
        "status.podIPs" => arr(pod, &["status", "podIPs"])
            .iter()
            .map(|x| s(x, &["ip"]).to_string())
            .collect::<Vec<_>>()
            .join(","),
        "metadata.labels" | "metadata.annotations" => {
            let m = get(pod, &p).and_then(Value::as_object);
            let mut pairs: Vec<String> = m
                .map(|m| {
                    m.iter()
                        .map(|(k, x)| format!("{k}={}", go_quote(&v(Some(x)))))
                        .collect()
                })
                .unwrap_or_default();
            pairs.sort();
            pairs.join("\n")
        }
        _ => s(pod, &p).to_string(),
    }
}

/// describe.go `describeVolumes`.
fn describe_volumes(w: &mut Prefix, volumes: &[Value], space: &str) {
    if volumes.is_empty() {
        w.w(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.w(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for vol in volumes {
        w.w(1, &format!("{name_indent}{}:\n", s(vol, &["name"])));
        if let Some(h) = get(vol, &["hostPath"]) {
            let t = s(h, &["type"]);
            w.w(
                2,
                &format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    s(h, &["path"]),
                    if get(h, &["type"]).is_some() { t } else { "<none>" }
                ),
            );
        } else if let Some(e) = get(vol, &["emptyDir"]) {
            let limit = get(e, &["sizeLimit"])
                .map(|x| v(Some(x)))
                .filter(|x| !x.is_empty() && x != "0");
            w.w(
                2,
                &format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{}\n",
                    s(e, &["medium"]),
                    limit.as_deref().unwrap_or("<unset>")
                ),
            );
        } else if let Some(x) = get(vol, &["secret"]) {
            w.w(
                2,
                &format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    s(x, &["secretName"]),
                    b(x, &["optional"])
                ),
            );
        } else if let Some(x) = get(vol, &["configMap"]) {
            w.w(
                2,
                &format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    s(x, &["name"]),
                    b(x, &["optional"])
                ),
            );
        } else if let Some(x) = get(vol, &["persistentVolumeClaim"]) {
            w.w(
                2,
                &format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    s(x, &["claimName"]),
                    b(x, &["readOnly"])
                ),
            );
        } else if let Some(x) = get(vol, &["projected"]) {
            w.w(
                2,
                "Type:\tProjected (a volume that contains injected data from multiple sources)\n",
            );
            for src in arr(x, &["sources"]) {
                if let Some(sec) = get(src, &["secret"]) {
                    w.w(
                        2,
                        &format!(
                            "SecretName:\t{}\n    Optional:\t{}\n",
                            s(sec, &["name"]),
                            b(sec, &["optional"])
                        ),
                    );
                } else if get(src, &["downwardAPI"]).is_some() {
                    w.w(2, "DownwardAPI:\ttrue\n");
                } else if let Some(cm) = get(src, &["configMap"]) {
                    w.w(
                        2,
                        &format!(
                            "ConfigMapName:\t{}\n    Optional:\t{}\n",
                            s(cm, &["name"]),
                            b(cm, &["optional"])
                        ),
                    );
                } else if let Some(t) = get(src, &["serviceAccountToken"]) {
                    w.w(
                        2,
                        &format!(
                            "TokenExpirationSeconds:\t{}\n",
                            i(t, &["expirationSeconds"])
                        ),
                    );
                }
            }
        } else if let Some(x) = get(vol, &["downwardAPI"]) {
            w.w(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n");
            for item in arr(x, &["items"]) {
                if let Some(f) = get(item, &["fieldRef"]) {
                    w.w(
                        3,
                        &format!("{} -> {}\n", s(f, &["fieldPath"]), s(item, &["path"])),
                    );
                }
                if let Some(r) = get(item, &["resourceFieldRef"]) {
                    w.w(
                        3,
                        &format!("{} -> {}\n", s(r, &["resource"]), s(item, &["path"])),
                    );
                }
            }
        } else {
            w.w(1, "<unknown>\n");
        }
    }
}

/// describe.go `describeTopologySpreadConstraints`.
fn describe_topology(w: &mut Prefix, tscs: &[Value], space: &str) {
    if tscs.is_empty() {
        return;
    }
    let mut sorted: Vec<&Value> = tscs.iter().collect();
    sorted.sort_by(|a, c| s(a, &["topologyKey"]).cmp(s(c, &["topologyKey"])));
    w.w(0, &format!("{space}Topology Spread Constraints:\t"));
    for (n, t) in sorted.iter().enumerate() {
        if n != 0 {
            w.w(0, &format!("{space}\t"));
        }
        let mut line = format!(
            "{}:{} when max skew {} is exceeded",
            s(t, &["topologyKey"]),
            s(t, &["whenUnsatisfiable"]),
            i(t, &["maxSkew"])
        );
        if let Some(sel) = get(t, &["labelSelector"]).filter(|x| !x.is_null()) {
            line.push_str(&format!(
                " for selector {}",
                format_label_selector(Some(sel))
            ));
        }
        w.w(0, &format!("{line}\n"));
    }
}

/// describe.go `DescribePodTemplate`.
fn describe_pod_template(w: &mut Prefix, template: Option<&Value>) {
    w.w(0, "Pod Template:\n");
    let Some(t) = template else {
        w.w(1, "<unset>");
        return;
    };
    labels_multiline(w, "  Labels", get(t, &["metadata", "labels"]));
    if get(t, &["metadata", "annotations"])
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        annotations_multiline(w, "  Annotations", get(t, &["metadata", "annotations"]));
    }
    let sa = s(t, &["spec", "serviceAccountName"]);
    if !sa.is_empty() {
        w.w(1, &format!("Service Account:\t{sa}\n"));
    }
    let init = arr(t, &["spec", "initContainers"]);
    if !init.is_empty() {
        describe_containers(w, "Init Containers", init, &[], None, "  ");
    }
    describe_containers(
        w,
        "Containers",
        arr(t, &["spec", "containers"]),
        &[],
        None,
        "  ",
    );
    describe_volumes(w, arr(t, &["spec", "volumes"]), "  ");
    describe_topology(w, arr(t, &["spec", "topologySpreadConstraints"]), "  ");
    let pc = s(t, &["spec", "priorityClassName"]);
    if !pc.is_empty() {
        w.w(1, &format!("Priority Class Name:\t{pc}\n"));
    }
    labels_multiline(w, "  Node-Selectors", get(t, &["spec", "nodeSelector"]));
    tolerations_multiline(w, "  Tolerations", arr(t, &["spec", "tolerations"]));
}

/// kubectl `qos.GetPodQOS`: the status field, else computed from container resources.
fn pod_qos(pod: &Value) -> String {
    let status = s(pod, &["status", "qosClass"]);
    if !status.is_empty() {
        return status.to_string();
    }
    let containers: Vec<&Value> = arr(pod, &["spec", "containers"])
        .iter()
        .chain(arr(pod, &["spec", "initContainers"]))
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = get(c, &["resources", "requests"]).and_then(Value::as_object);
        let lim = get(c, &["resources", "limits"]).and_then(Value::as_object);
        let has = |m: Option<&serde_json::Map<String, Value>>, k: &str| {
            m.is_some_and(|m| m.contains_key(k))
        };
        for r in ["cpu", "memory"] {
            if has(req, r) || has(lim, r) {
                any = true;
            }
            let l = lim.and_then(|m| m.get(r));
            let q = req.and_then(|m| m.get(r)).or(l);
            if l.is_none() || q != l {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort".into()
    } else if guaranteed {
        "Guaranteed".into()
    } else {
        "Burstable".into()
    }
}

/// describe.go `printController`: `Kind/name` of the controller owner reference.
fn controlled_by(obj: &Value) -> Option<String> {
    arr(obj, &["metadata", "ownerReferences"])
        .iter()
        .find(|o| b(o, &["controller"]))
        .map(|o| format!("{}/{}", s(o, &["kind"]), s(o, &["name"])))
}

// ---------------------------------------------------------------------------------------------
// describers

/// `kubectl describe pod` (describe.go `describePod`).
pub fn describe_pod(pod: &Value, ctx: &DescribeContext) -> String {
    let mut w = Prefix::new();
    w.w(0, &format!("Name:\t{}\n", s(pod, &["metadata", "name"])));
    w.w(
        0,
        &format!("Namespace:\t{}\n", s(pod, &["metadata", "namespace"])),
    );
    if let Some(p) = get(pod, &["spec", "priority"]).filter(|x| !x.is_null()) {
        w.w(0, &format!("Priority:\t{}\n", v(Some(p))));
    }
    for (key, title) in [
        ("priorityClassName", "Priority Class Name"),
        ("runtimeClassName", "Runtime Class Name"),
        ("serviceAccountName", "Service Account"),
    ] {
        let x = s(pod, &["spec", key]);
        if !x.is_empty() {
            w.w(0, &format!("{title}:\t{x}\n"));
        }
    }
    let node = s(pod, &["spec", "nodeName"]);
    if node.is_empty() {
        w.w(0, "Node:\t<none>\n");
    } else {
        w.w(
            0,
            &format!("Node:\t{node}/{}\n", s(pod, &["status", "hostIP"])),
        );
    }
    if let Some(st) = get(pod, &["status", "startTime"]).and_then(Value::as_str) {
        w.w(0, &format!("Start Time:\t{}\n", rfc1123z(Some(st))));
    }
    labels_multiline(&mut w, "Labels", get(pod, &["metadata", "labels"]));
    annotations_multiline(
        &mut w,
        "Annotations",
        get(pod, &["metadata", "annotations"]),
    );
    let phase = s(pod, &["status", "phase"]);
    let deletion = get(pod, &["metadata", "deletionTimestamp"]).filter(|x| !x.is_null());
    if deletion.is_some() && phase != "Failed" && phase != "Succeeded" {
        w.w(
            0,
            &format!(
                "Status:\tTerminating (lasts {})\n",
                since(deletion, ctx.now_ms)
            ),
        );
        w.w(
            0,
            &format!(
                "Termination Grace Period:\t{}s\n",
                i(pod, &["metadata", "deletionGracePeriodSeconds"])
            ),
        );
    } else {
        w.w(0, &format!("Status:\t{phase}\n"));
    }
    for (key, title) in [("reason", "Reason"), ("message", "Message")] {
        let x = s(pod, &["status", key]);
        if !x.is_empty() {
            w.w(0, &format!("{title}:\t{x}\n"));
        }
    }
    if let Some(sp) = get(pod, &["spec", "securityContext", "seccompProfile"]) {
        w.w(0, &format!("SeccompProfile:\t{}\n", s(sp, &["type"])));
        if s(sp, &["type"]) == "Localhost" {
            w.w(
                0,
                &format!("LocalhostProfile:\t{}\n", s(sp, &["localhostProfile"])),
            );
        }
    }
    w.w(0, &format!("IP:\t{}\n", s(pod, &["status", "podIP"])));
    let ips = arr(pod, &["status", "podIPs"]);
    if ips.is_empty() {
        w.w(0, "IPs:\t<none>\n");
    } else {
        w.w(0, "IPs:\n");
        for ip in ips {
            w.w(1, &format!("IP:\t{}\n", s(ip, &["ip"])));
        }
    }
    if let Some(c) = controlled_by(pod) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    let nominated = s(pod, &["status", "nominatedNodeName"]);
    if !nominated.is_empty() {
        w.w(0, &format!("NominatedNodeName:\t{nominated}\n"));
    }
    if let Some(r) = get(pod, &["spec", "resources"]).filter(|x| !x.is_null()) {
        w.w(0, "Resources:\n");
        describe_resources(&mut w, Some(r), 1);
    }
    let init = arr(pod, &["spec", "initContainers"]);
    if !init.is_empty() {
        let st = arr(pod, &["status", "initContainerStatuses"]);
        describe_containers(&mut w, "Init Containers", init, st, Some(pod), "");
    }
    let st = arr(pod, &["status", "containerStatuses"]);
    describe_containers(
        &mut w,
        "Containers",
        arr(pod, &["spec", "containers"]),
        st,
        Some(pod),
        "",
    );
    let eph = arr(pod, &["spec", "ephemeralContainers"]);
    if !eph.is_empty() {
        let st = arr(pod, &["status", "ephemeralContainerStatuses"]);
        describe_containers(&mut w, "Ephemeral Containers", eph, st, Some(pod), "");
    }
    let conditions = arr(pod, &["status", "conditions"]);
    let gates = arr(pod, &["spec", "readinessGates"]);
    if !gates.is_empty() {
        w.w(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let t = s(g, &["conditionType"]);
            let status = conditions
                .iter()
                .find(|c| s(c, &["type"]) == t)
                .map(|c| s(c, &["status"]).to_string())
                .unwrap_or_else(|| "<none>".into());
            w.w(1, &format!("{t} \t{status} \n"));
        }
    }
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\n");
        for c in conditions {
            w.w(
                1,
                &format!("{} \t{} \n", s(c, &["type"]), s(c, &["status"])),
            );
        }
    }
    describe_volumes(&mut w, arr(pod, &["spec", "volumes"]), "");
    w.w(0, &format!("QoS Class:\t{}\n", pod_qos(pod)));
    labels_multiline(
        &mut w,
        "Node-Selectors",
        get(pod, &["spec", "nodeSelector"]),
    );
    tolerations_multiline(&mut w, "Tolerations", arr(pod, &["spec", "tolerations"]));
    describe_topology(&mut w, arr(pod, &["spec", "topologySpreadConstraints"]), "");
    describe_events(&mut w, ctx);
    w.finish()
}

/// describe.go `formatEndpoints` (kubectl before EndpointSlices): ready addresses only.
fn format_endpoints(ep: &Value, port_name: &str) -> String {
    let subsets = arr(ep, &["subsets"]);
    if subsets.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let (mut list, mut more, mut count) = (Vec::new(), false, 0usize);
    for ss in subsets {
        let addrs = arr(ss, &["addresses"]);
        let ports = arr(ss, &["ports"]);
        if ports.is_empty() {
            for a in addrs {
                if list.len() == max {
                    more = true;
                }
                if !more {
                    list.push(s(a, &["ip"]).to_string());
                }
                count += 1;
            }
        } else {
            for p in ports.iter().filter(|p| s(p, &["name"]) == port_name) {
                for a in addrs {
                    if list.len() == max {
                        more = true;
                    }
                    if !more {
                        list.push(join_host_port(s(a, &["ip"]), i(p, &["port"])));
                    }
                    count += 1;
                }
            }
        }
    }
    finish_endpoint_list(list, more, count, max)
}

/// describe.go `formatEndpointSlices` (kubectl 1.33+): not-ready endpoints are skipped.
fn format_endpoint_slices(slices: &[Value], port_name: &str) -> String {
    if slices.is_empty() {
        return "<none>".into();
    }
    let max = 3;
    let (mut list, mut more, mut count) = (Vec::new(), false, 0usize);
    for sl in slices {
        let eps = arr(sl, &["endpoints"]);
        let ready =
            |e: &Value| get(e, &["conditions", "ready"]).and_then(Value::as_bool) != Some(false);
        let first_addr = |e: &Value| {
            arr(e, &["addresses"])
                .first()
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let ports = arr(sl, &["ports"]);
        if ports.is_empty() {
            for e in eps {
                if list.len() == max {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(first_addr(e));
                }
                count += 1;
            }
        } else {
            for p in ports.iter().filter(|p| s(p, &["name"]) == port_name) {
                for e in eps {
                    if list.len() == max {
                        more = true;
                    }
                    if !ready(e) {
                        continue;
                    }
                    if !more {
                        list.push(join_host_port(&first_addr(e), i(p, &["port"])));
                    }
                    count += 1;
                }
            }
        }
    }
    finish_endpoint_list(list, more, count, max)
}

fn finish_endpoint_list(list: Vec<String>, more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        format!("{ret} + {} more...", count - max)
    } else {
        ret
    }
}

/// Go `net.JoinHostPort`.
fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// `kubectl describe service` (describe.go `describeService`). `endpoints` may be the
/// Endpoints object (older kubectl) or the service's EndpointSlices, as an array or a list
/// object with `items` (kubectl 1.33+); `None` prints `<none>`.
pub fn describe_service(svc: &Value, endpoints: Option<&Value>, ctx: &DescribeContext) -> String {
    let mut w = Prefix::new();
    w.w(0, &format!("Name:\t{}\n", s(svc, &["metadata", "name"])));
    w.w(
        0,
        &format!("Namespace:\t{}\n", s(svc, &["metadata", "namespace"])),
    );
    labels_multiline(&mut w, "Labels", get(svc, &["metadata", "labels"]));
    annotations_multiline(
        &mut w,
        "Annotations",
        get(svc, &["metadata", "annotations"]),
    );
    w.w(
        0,
        &format!(
            "Selector:\t{}\n",
            format_labels(get(svc, &["spec", "selector"]))
        ),
    );
    w.w(0, &format!("Type:\t{}\n", s(svc, &["spec", "type"])));
    if let Some(p) = get(svc, &["spec", "ipFamilyPolicy"]).and_then(Value::as_str) {
        w.w(0, &format!("IP Family Policy:\t{p}\n"));
    }
    let fams: Vec<String> = arr(svc, &["spec", "ipFamilies"])
        .iter()
        .map(|x| v(Some(x)))
        .collect();
    w.w(0, &format!("IP Families:\t{}\n", or_none(&fams.join(","))));
    w.w(0, &format!("IP:\t{}\n", s(svc, &["spec", "clusterIP"])));
    let ips: Vec<String> = arr(svc, &["spec", "clusterIPs"])
        .iter()
        .map(|x| v(Some(x)))
        .collect();
    w.w(0, &format!("IPs:\t{}\n", or_none(&ips.join(","))));
    let ext: Vec<String> = arr(svc, &["spec", "externalIPs"])
        .iter()
        .map(|x| v(Some(x)))
        .collect();
    if !ext.is_empty() {
        w.w(0, &format!("External IPs:\t{}\n", ext.join(",")));
    }
    for (key, title) in [
        ("loadBalancerIP", "Desired LoadBalancer IP"),
        ("externalName", "External Name"),
    ] {
        let x = s(svc, &["spec", key]);
        if !x.is_empty() {
            w.w(0, &format!("{title}:\t{x}\n"));
        }
    }
    let ingress = arr(svc, &["status", "loadBalancer", "ingress"]);
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|g| {
                let ip = s(g, &["ip"]);
                if ip.is_empty() {
                    s(g, &["hostname"]).to_string()
                } else if let Some(mode) = get(g, &["ipMode"]).and_then(Value::as_str) {
                    format!("{ip} ({mode})")
                } else {
                    ip.to_string()
                }
            })
            .collect();
        w.w(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for sp in arr(svc, &["spec", "ports"]) {
        let port_name = s(sp, &["name"]);
        let name = if port_name.is_empty() {
            "<unset>"
        } else {
            port_name
        };
        let proto = s(sp, &["protocol"]);
        w.w(0, &format!("Port:\t{name}\t{}/{proto}\n", i(sp, &["port"])));
        w.w(
            0,
            &format!(
                "TargetPort:\t{}/{proto}\n",
                int_or_string(get(sp, &["targetPort"]))
            ),
        );
        if i(sp, &["nodePort"]) != 0 {
            w.w(
                0,
                &format!("NodePort:\t{name}\t{}/{proto}\n", i(sp, &["nodePort"])),
            );
        }
        let eps = match endpoints {
            None => "<none>".to_string(),
            Some(Value::Array(slices)) => format_endpoint_slices(slices, port_name),
            Some(e) if e.get("items").is_some() => {
                format_endpoint_slices(arr(e, &["items"]), port_name)
            }
            Some(e) => format_endpoints(e, port_name),
        };
        w.w(0, &format!("Endpoints:\t{eps}\n"));
    }
    w.w(
        0,
        &format!(
            "Session Affinity:\t{}\n",
            s(svc, &["spec", "sessionAffinity"])
        ),
    );
    let etp = s(svc, &["spec", "externalTrafficPolicy"]);
    if !etp.is_empty() {
        w.w(0, &format!("External Traffic Policy:\t{etp}\n"));
    }
    if let Some(itp) = get(svc, &["spec", "internalTrafficPolicy"]).and_then(Value::as_str) {
        w.w(0, &format!("Internal Traffic Policy:\t{itp}\n"));
    }
    if i(svc, &["spec", "healthCheckNodePort"]) != 0 {
        w.w(
            0,
            &format!(
                "HealthCheck NodePort:\t{}\n",
                i(svc, &["spec", "healthCheckNodePort"])
            ),
        );
    }
    let ranges: Vec<String> = arr(svc, &["spec", "loadBalancerSourceRanges"])
        .iter()
        .map(|x| v(Some(x)))
        .collect();
    if !ranges.is_empty() {
        w.w(
            0,
            &format!("LoadBalancer Source Ranges:\t{}\n", ranges.join(",")),
        );
    }
    let td = s(svc, &["spec", "trafficDistribution"]);
    if !td.is_empty() {
        w.w(0, &format!("Traffic Distribution:\t{td}\n"));
    }
    describe_events(&mut w, ctx);
    w.finish()
}

/// describe.go `printReplicaSetsByLabels`.
fn replica_sets_by_labels(rss: &[&Value]) -> String {
    let list: Vec<String> = rss
        .iter()
        .map(|rs| {
            format!(
                "{} ({}/{} replicas created)",
                s(rs, &["metadata", "name"]),
                i(rs, &["status", "replicas"]),
                i(rs, &["spec", "replicas"])
            )
        })
        .collect();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(", ")
    }
}

/// `kubectl describe deployment` (describe.go `describeDeployment`).
pub fn describe_deployment(
    d: &Value,
    old_rs: &[Value],
    new_rs: Option<&Value>,
    ctx: &DescribeContext,
) -> String {
    let mut w = Prefix::new();
    w.w(0, &format!("Name:\t{}\n", s(d, &["metadata", "name"])));
    w.w(
        0,
        &format!("Namespace:\t{}\n", s(d, &["metadata", "namespace"])),
    );
    w.w(
        0,
        &format!(
            "CreationTimestamp:\t{}\n",
            rfc1123z(get(d, &["metadata", "creationTimestamp"]).and_then(Value::as_str))
        ),
    );
    labels_multiline(&mut w, "Labels", get(d, &["metadata", "labels"]));
    annotations_multiline(&mut w, "Annotations", get(d, &["metadata", "annotations"]));
    w.w(
        0,
        &format!(
            "Selector:\t{}\n",
            selector_string(get(d, &["spec", "selector"]))
        ),
    );
    w.w(
        0,
        &format!(
            "Replicas:\t{} desired | {} updated | {} total | {} available | {} unavailable\n",
            i(d, &["spec", "replicas"]),
            i(d, &["status", "updatedReplicas"]),
            i(d, &["status", "replicas"]),
            i(d, &["status", "availableReplicas"]),
            i(d, &["status", "unavailableReplicas"])
        ),
    );
    w.w(
        0,
        &format!("StrategyType:\t{}\n", s(d, &["spec", "strategy", "type"])),
    );
    w.w(
        0,
        &format!("MinReadySeconds:\t{}\n", i(d, &["spec", "minReadySeconds"])),
    );
    if let Some(ru) = get(d, &["spec", "strategy", "rollingUpdate"]).filter(|x| !x.is_null()) {
        w.w(
            0,
            &format!(
                "RollingUpdateStrategy:\t{} max unavailable, {} max surge\n",
                int_or_string(get(ru, &["maxUnavailable"])),
                int_or_string(get(ru, &["maxSurge"]))
            ),
        );
    }
    describe_pod_template(&mut w, get(d, &["spec", "template"]));
    let conditions = arr(d, &["status", "conditions"]);
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.w(1, "----\t------\t------\n");
        for c in conditions {
            w.w(
                1,
                &format!(
                    "{} \t{}\t{}\n",
                    s(c, &["type"]),
                    s(c, &["status"]),
                    s(c, &["reason"])
                ),
            );
        }
    }
    let old: Vec<&Value> = old_rs.iter().collect();
    let new: Vec<&Value> = new_rs.into_iter().collect();
    if !old.is_empty() || !new.is_empty() {
        w.w(
            0,
            &format!("OldReplicaSets:\t{}\n", replica_sets_by_labels(&old)),
        );
        w.w(
            0,
            &format!("NewReplicaSet:\t{}\n", replica_sets_by_labels(&new)),
        );
    }
    describe_events(&mut w, ctx);
    w.finish()
}

/// `kubectl describe replicaset` (describe.go `describeReplicaSet`); pod counts come from
/// `ctx.related` pods whose controller reference is this ReplicaSet's uid.
pub fn describe_replicaset(rs: &Value, ctx: &DescribeContext) -> String {
    let mut w = Prefix::new();
    w.w(0, &format!("Name:\t{}\n", s(rs, &["metadata", "name"])));
    w.w(
        0,
        &format!("Namespace:\t{}\n", s(rs, &["metadata", "namespace"])),
    );
    w.w(
        0,
        &format!(
            "Selector:\t{}\n",
            format_label_selector(get(rs, &["spec", "selector"]))
        ),
    );
    labels_multiline(&mut w, "Labels", get(rs, &["metadata", "labels"]));
    annotations_multiline(&mut w, "Annotations", get(rs, &["metadata", "annotations"]));
    if let Some(c) = controlled_by(rs) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    w.w(
        0,
        &format!(
            "Replicas:\t{} current / {} desired\n",
            i(rs, &["status", "replicas"]),
            i(rs, &["spec", "replicas"])
        ),
    );
    let uid = s(rs, &["metadata", "uid"]);
    let (mut running, mut waiting, mut succeeded, mut failed) = (0, 0, 0, 0);
    for pod in ctx.related {
        let owned = arr(pod, &["metadata", "ownerReferences"])
            .iter()
            .any(|o| b(o, &["controller"]) && s(o, &["uid"]) == uid);
        if !owned {
            continue;
        }
        match s(pod, &["status", "phase"]) {
            "Running" => running += 1,
            "Pending" => waiting += 1,
            "Succeeded" => succeeded += 1,
            "Failed" => failed += 1,
            _ => {}
        }
    }
    w.w(0, "Pods Status:\t");
    w.w(
        0,
        &format!(
            "{running} Running / {waiting} Waiting / {succeeded} Succeeded / {failed} Failed\n"
        ),
    );
    describe_pod_template(&mut w, get(rs, &["spec", "template"]));
    let conditions = arr(rs, &["status", "conditions"]);
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\tReason\n");
        w.w(1, "----\t------\t------\n");
        for c in conditions {
            w.w(
                1,
                &format!(
                    "{} \t{}\t{}\n",
                    s(c, &["type"]),
                    s(c, &["status"]),
                    s(c, &["reason"])
                ),
            );
        }
    }
    describe_events(&mut w, ctx);
    w.finish()
}

/// describe.go `serviceBackendStringer` plus, as `describeBackendV1` adds, the Service's
/// endpoints on the named port in parentheses (or the error from looking the Service up).
fn ingress_backend(ns: &str, backend: &Value, services: &[Value], slices: &[Value]) -> String {
    let Some(svc_ref) = get(backend, &["service"]) else {
        if let Some(r) = get(backend, &["resource"]) {
            let group = get(r, &["apiGroup"])
                .and_then(Value::as_str)
                .unwrap_or("<none>");
            return format!(
                "APIGroup: {group}, Kind: {}, Name: {}",
                s(r, &["kind"]),
                s(r, &["name"])
            );
        }
        return String::new();
    };
    let name = s(svc_ref, &["name"]);
    let number = i(svc_ref, &["port", "number"]);
    let port_name = s(svc_ref, &["port", "name"]);
    let port = if number != 0 {
        number.to_string()
    } else {
        port_name.to_owned()
    };
    let sb = format!("{name}:{port}");
    let Some(svc) = services
        .iter()
        .find(|x| s(x, &["metadata", "namespace"]) == ns && s(x, &["metadata", "name"]) == name)
    else {
        return format!("{sb} (<error: services \"{name}\" not found>)");
    };
    let mut sp_name = "";
    for p in arr(svc, &["spec", "ports"]) {
        if (number != 0 && number == i(p, &["port"]))
            || (!port_name.is_empty() && port_name == s(p, &["name"]))
        {
            sp_name = s(p, &["name"]);
        }
    }
    let own: Vec<Value> = slices
        .iter()
        .filter(|x| {
            s(x, &["metadata", "namespace"]) == ns
                && s(x, &["metadata", "labels", "kubernetes.io/service-name"]) == name
        })
        .cloned()
        .collect();
    format!("{sb} ({})", format_endpoint_slices(&own, sp_name))
}

/// `kubectl describe ingress` (describe.go `describeIngressV1`). `services` and `slices`
/// are those of the Ingress's namespace, for the backends' endpoints.
pub fn describe_ingress(
    ing: &Value,
    services: &[Value],
    slices: &[Value],
    ctx: &DescribeContext,
) -> String {
    let mut w = Prefix::new();
    let ns = s(ing, &["metadata", "namespace"]);
    w.w(0, &format!("Name:\t{}\n", s(ing, &["metadata", "name"])));
    labels_multiline(&mut w, "Labels", get(ing, &["metadata", "labels"]));
    w.w(0, &format!("Namespace:\t{ns}\n"));
    let mut addrs: Vec<&str> = arr(ing, &["status", "loadBalancer", "ingress"])
        .iter()
        .filter_map(|a| {
            get(a, &["ip"])
                .and_then(Value::as_str)
                .filter(|x| !x.is_empty())
                .or_else(|| get(a, &["hostname"]).and_then(Value::as_str))
        })
        .collect();
    addrs.sort();
    addrs.dedup();
    w.w(0, &format!("Address:\t{}\n", addrs.join(",")));
    let class = get(ing, &["spec", "ingressClassName"])
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    w.w(0, &format!("Ingress Class:\t{class}\n"));
    let default = match get(ing, &["spec", "defaultBackend"]) {
        Some(d) => ingress_backend(ns, d, services, slices),
        None => "<default>".to_owned(),
    };
    w.w(0, &format!("Default backend:\t{default}\n"));
    let tls = arr(ing, &["spec", "tls"]);
    if !tls.is_empty() {
        w.w(0, "TLS:\n");
        for t in tls {
            let hosts: Vec<String> = arr(t, &["hosts"]).iter().map(|h| v(Some(h))).collect();
            match get(t, &["secretName"])
                .and_then(Value::as_str)
                .filter(|x| !x.is_empty())
            {
                Some(secret) => w.w(1, &format!("{secret} terminates {}\n", hosts.join(","))),
                None => w.w(1, &format!("SNI routes {}\n", hosts.join(","))),
            }
        }
    }
    w.w(0, "Rules:\n  Host\tPath\tBackends\n");
    w.w(1, "----\t----\t--------\n");
    let mut count = 0;
    for rule in arr(ing, &["spec", "rules"]) {
        let Some(http) = get(rule, &["http"]).filter(|h| !h.is_null()) else {
            continue;
        };
        count += 1;
        let host = s(rule, &["host"]);
        w.w(
            1,
            &format!("{}\t\n", if host.is_empty() { "*" } else { host }),
        );
        for p in arr(http, &["paths"]) {
            let backend = get(p, &["backend"])
                .map_or(String::new(), |b| ingress_backend(ns, b, services, slices));
            w.w(2, &format!("\t{} \t{backend}\n", s(p, &["path"])));
        }
    }
    if count == 0 {
        w.w(1, &format!("*\t*\t{default}\n"));
    }
    annotations_multiline(
        &mut w,
        "Annotations",
        get(ing, &["metadata", "annotations"]),
    );
    describe_events(&mut w, ctx);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Expected texts are laid out from describe.go's format strings and the tabwriter rules
    // (cell width + 2 per column block, blocks broken by single-cell lines).
    const POD: &str = r#"Name:             web-7cf55fb7bb-5fjcn
Namespace:        default
Priority:         0
Service Account:  default
Node:             kind-worker/172.18.0.3
Start Time:       Tue, 27 Oct 2020 10:00:00 +0000
Labels:           app=web
                  pod-template-hash=7cf55fb7bb
Annotations:      <none>
Status:           Running
IP:               10.244.1.5
IPs:
  IP:           10.244.1.5
Controlled By:  ReplicaSet/web-7cf55fb7bb
Containers:
  nginx:
    Container ID:   containerd://abc
    Image:          nginx:1.25
    Image ID:       docker.io/library/nginx@sha256:1
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Tue, 27 Oct 2020 10:00:05 +0000
    Ready:          True
    Restart Count:  0
    Environment:    <none>
    Mounts:
      /var/run/secrets/kubernetes.io/serviceaccount from kube-api-access-x (ro)
Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Volumes:
  kube-api-access-x:
    Type:                    Projected (a volume that contains injected data from multiple sources)
    TokenExpirationSeconds:  3607
    ConfigMapName:           kube-root-ca.crt
    Optional:                false
    DownwardAPI:             true
QoS Class:                   BestEffort
Node-Selectors:              <none>
Tolerations:                 node.kubernetes.io/not-ready:NoExecute op=Exists for 300s
                             node.kubernetes.io/unreachable:NoExecute op=Exists for 300s
Events:
  Type    Reason     Age   From               Message
  ----    ------     ----  ----               -------
  Normal  Scheduled  37m   default-scheduler  Successfully assigned default/web-7cf55fb7bb-5fjcn to kind-worker
"#;

    const SVC: &str = r#"Name:                     web
Namespace:                default
Labels:                   app=web
Annotations:              <none>
Selector:                 app=web
Type:                     NodePort
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.96.45.12
IPs:                      10.96.45.12
Port:                     <unset>  80/TCP
TargetPort:               8080/TCP
NodePort:                 <unset>  30707/TCP
Endpoints:                10.244.1.5:8080,10.244.2.7:8080
Session Affinity:         None
External Traffic Policy:  Cluster
Internal Traffic Policy:  Cluster
Events:                   <none>
"#;

    const DEP: &str = r#"Name:                   web
Namespace:              default
CreationTimestamp:      Tue, 27 Oct 2020 10:00:00 +0000
Labels:                 app=web
Annotations:            deployment.kubernetes.io/revision: 1
Selector:               app=web
Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=web
  Containers:
   nginx:
    Image:         nginx:1.25
    Port:          80/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
  Progressing    True    NewReplicaSetAvailable
OldReplicaSets:  <none>
NewReplicaSet:   web-7cf55fb7bb (3/3 replicas created)
Events:
  Type    Reason             Age   From                   Message
  ----    ------             ----  ----                   -------
  Normal  ScalingReplicaSet  5m    deployment-controller  Scaled up replica set web-7cf55fb7bb from 0 to 3
"#;

    fn ms(ts: &str) -> i64 {
        parse_ms(ts).unwrap()
    }

    #[test]
    fn running_pod() {
        let pod = json!({
            "metadata": {"name": "web-7cf55fb7bb-5fjcn", "namespace": "default",
                "labels": {"pod-template-hash": "7cf55fb7bb", "app": "web"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-7cf55fb7bb", "uid": "u1", "controller": true}]},
            "spec": {"priority": 0, "serviceAccountName": "default", "nodeName": "kind-worker",
                "containers": [{"name": "nginx", "image": "nginx:1.25",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "volumeMounts": [{"name": "kube-api-access-x", "readOnly": true,
                        "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]}],
                "volumes": [{"name": "kube-api-access-x", "projected": {"sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt"}},
                    {"downwardAPI": {"items": []}}]}}],
                "tolerations": [
                    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]},
            "status": {"phase": "Running", "hostIP": "172.18.0.3", "podIP": "10.244.1.5",
                "podIPs": [{"ip": "10.244.1.5"}], "startTime": "2020-10-27T10:00:00Z",
                "qosClass": "BestEffort",
                "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                    {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "nginx", "containerID": "containerd://abc",
                    "image": "nginx:1.25", "imageID": "docker.io/library/nginx@sha256:1",
                    "ready": true, "restartCount": 0,
                    "state": {"running": {"startedAt": "2020-10-27T10:00:05Z"}}}]}
        });
        let events = [json!({"type": "Normal", "reason": "Scheduled",
            "message": "Successfully assigned default/web-7cf55fb7bb-5fjcn to kind-worker",
            "source": {"component": "default-scheduler"}, "count": 1,
            "firstTimestamp": "2020-10-27T10:00:00Z", "lastTimestamp": "2020-10-27T10:00:00Z"})];
        let ctx = DescribeContext {
            now_ms: ms("2020-10-27T10:37:00Z"),
            events: &events,
            related: &[],
        };
        assert_eq!(describe_pod(&pod, &ctx), POD);
    }

    #[test]
    fn nodeport_service() {
        let svc = json!({
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"type": "NodePort", "selector": {"app": "web"}, "clusterIP": "10.96.45.12",
                "clusterIPs": ["10.96.45.12"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                "ports": [{"protocol": "TCP", "port": 80, "targetPort": 8080, "nodePort": 30707}],
                "sessionAffinity": "None", "externalTrafficPolicy": "Cluster",
                "internalTrafficPolicy": "Cluster"},
            "status": {"loadBalancer": {}}
        });
        let slices = json!([{"addressType": "IPv4",
            "ports": [{"name": "", "port": 8080, "protocol": "TCP"}],
            "endpoints": [
                {"addresses": ["10.244.1.5"], "conditions": {"ready": true}},
                {"addresses": ["10.244.2.7"], "conditions": {"ready": true}},
                {"addresses": ["10.244.2.8"], "conditions": {"ready": false}}]}]);
        let ctx = DescribeContext {
            now_ms: 0,
            events: &[],
            related: &[],
        };
        assert_eq!(describe_service(&svc, Some(&slices), &ctx), SVC);
        // The same endpoints given as a v1 Endpoints object (pre-1.33 kubectl).
        let ep = json!({"subsets": [{"addresses": [{"ip": "10.244.1.5"}, {"ip": "10.244.2.7"}],
            "notReadyAddresses": [{"ip": "10.244.2.8"}], "ports": [{"port": 8080, "protocol": "TCP"}]}]});
        assert_eq!(describe_service(&svc, Some(&ep), &ctx), SVC);
    }

    #[test]
    fn deployment() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2020-10-27T10:00:00Z",
                "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "1",
                    "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}},
            "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}
        });
        let rs = json!({"metadata": {"name": "web-7cf55fb7bb"}, "spec": {"replicas": 3}, "status": {"replicas": 3}});
        let events = [json!({"type": "Normal", "reason": "ScalingReplicaSet",
            "message": "Scaled up replica set web-7cf55fb7bb from 0 to 3",
            "source": {"component": "deployment-controller"}, "count": 1,
            "firstTimestamp": "2020-10-27T10:32:00Z", "lastTimestamp": "2020-10-27T10:32:00Z"})];
        let ctx = DescribeContext {
            now_ms: ms("2020-10-27T10:37:00Z"),
            events: &events,
            related: &[],
        };
        assert_eq!(describe_deployment(&d, &[], Some(&rs), &ctx), DEP);
    }

    #[test]
    fn human_durations() {
        let s = 1000;
        assert_eq!(human_duration(-2 * s), "<invalid>");
        assert_eq!(human_duration(-1500), "0s");
        assert_eq!(human_duration(119 * s), "119s");
        assert_eq!(human_duration(191 * s), "3m11s");
        assert_eq!(human_duration(120 * s), "2m");
        assert_eq!(human_duration(62 * 60 * s), "62m");
        assert_eq!(human_duration((5 * 60 + 2) * 60 * s), "5h2m");
        assert_eq!(human_duration(47 * 3600 * s), "47h");
        assert_eq!(human_duration((2 * 24 + 5) * 3600 * s), "2d5h");
        assert_eq!(human_duration(114 * 24 * 3600 * s), "114d");
        assert_eq!(human_duration((2 * 365 + 3) * 24 * 3600 * s), "2y3d");
        assert_eq!(human_duration(9 * 365 * 24 * 3600 * s), "9y");
    }

    #[test]
    fn event_intervals_and_selectors() {
        let events = [
            json!({"type": "Warning", "reason": "BackOff", "message": " Back-off restarting \n",
            "reportingController": "kubelet", "count": 5,
            "firstTimestamp": "2020-10-27T10:00:00Z", "lastTimestamp": "2020-10-27T10:36:00Z"}),
        ];
        let ctx = DescribeContext {
            now_ms: ms("2020-10-27T10:37:00Z"),
            events: &events,
            related: &[],
        };
        let mut w = Prefix::new();
        describe_events(&mut w, &ctx);
        assert_eq!(
            w.finish(),
            "Events:\n  Type     Reason   Age                From     Message\n  ----     ------   ----               ----     -------\n  Warning  BackOff  60s (x5 over 37m)  kubelet  Back-off restarting\n"
        );
        let sel = json!({"matchLabels": {"tier": "fe"}, "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["b", "a"]}, {"key": "x", "operator": "DoesNotExist"}]});
        assert_eq!(selector_string(Some(&sel)), "app in (a,b),tier=fe,!x");
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
    }
}
