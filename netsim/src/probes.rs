//! The network commands a student types on a node or in a pod: `curl`, and the views of the
//! node's kube-proxy rules (`iptables-save`, `iptables -L`, `ipvsadm -Ln`, `nft list
//! ruleset`, `conntrack -L`). Every curl byte travels through the simulated network.

use std::net::Ipv4Addr;

use serde_json::Value;

use crate::cluster::cache::str_at;
use crate::cluster::kubeproxy::KubeProxy;
use crate::cluster::{Cluster, ClusterError};
use crate::net::http::{HttpApp, Response};
use crate::net::{Echo, Exchange, Fabric, HostSpec, NodeSpec, TcpExchange};
use crate::output::Output;

/// Where a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Node(String),
    /// A machine outside the cluster on the node network (`on: external`).
    External,
    Pod {
        namespace: String,
        name: String,
    },
}

impl Place {
    /// `k8s-master`, `pod/web-0`, `pod/coredns-x.kube-system`.
    pub fn parse(s: &str) -> Place {
        if s == "external" {
            return Place::External;
        }
        match s.strip_prefix("pod/") {
            Some(rest) => match rest.split_once('.') {
                Some((n, ns)) => Place::Pod {
                    namespace: ns.to_owned(),
                    name: n.to_owned(),
                },
                None => Place::Pod {
                    namespace: "default".to_owned(),
                    name: rest.to_owned(),
                },
            },
            None => Place::Node(s.to_owned()),
        }
    }

    /// The fabric host this place is.
    pub fn host_name(&self) -> String {
        match self {
            Place::Node(n) => n.clone(),
            Place::External => "external".to_owned(),
            Place::Pod { namespace, name } => format!("{namespace}/{name}"),
        }
    }

    /// The shell prompt a transcript shows for this place.
    pub fn prompt(&self) -> String {
        match self {
            Place::Node(n) => format!("user@{n}:~$ "),
            Place::External => "user@laptop:~$ ".to_owned(),
            Place::Pod { name, .. } => format!("root@{name}:/# "),
        }
    }
}

/// Commands this module answers (first word).
pub const COMMANDS: &[&str] = &[
    "curl",
    "ping",
    "dig",
    "nslookup",
    "cat",
    "iptables-save",
    "iptables",
    "ipvsadm",
    "nft",
    "conntrack",
    "ip",
];

fn pod_is_up(p: &Value) -> bool {
    str_at(p, "/status/phase") == Some("Running")
        && p.pointer("/metadata/deletionTimestamp").is_none()
}

/// The network as it is now: every node, and every running pod that has its own IP.
fn topology(
    cluster: &Cluster,
    tables: &std::collections::BTreeMap<String, proxy::RuleTable>,
) -> (Vec<NodeSpec>, Vec<HostSpec>) {
    let cache = cluster.cache();
    let snapshot = cluster.dns_snapshot();
    let mut nodes = Vec::new();
    let mut hosts = Vec::new();
    for n in cache.all("nodes") {
        let name = str_at(n, "/metadata/name").unwrap_or_default().to_owned();
        let ip: Ipv4Addr = str_at(n, "/status/addresses/0/address")
            .and_then(|s| s.parse().ok())
            .unwrap_or(Ipv4Addr::UNSPECIFIED);
        let cidr = str_at(n, "/spec/podCIDR").unwrap_or("0.0.0.0/32");
        let (net, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let pod_cidr = (
            net.parse().unwrap_or(Ipv4Addr::UNSPECIFIED),
            prefix.parse().unwrap_or(32),
        );
        nodes.push(NodeSpec {
            name: name.clone(),
            ip,
            pod_cidr,
        });
        let relay_ports = tables
            .get(&name)
            .filter(|rt| rt.mode == proxy::Mode::Userspace)
            .map(|rt| rt.portals.iter().map(|p| p.proxy_port).collect())
            .unwrap_or_default();
        // kube-proxy answers health checks for Local-policy Services on every node.
        let health: Vec<(u16, HttpApp)> = cache
            .all("services")
            .filter_map(|svc| {
                let port = svc
                    .pointer("/spec/healthCheckNodePort")
                    .and_then(Value::as_u64)?;
                let ns = str_at(svc, "/metadata/namespace")
                    .unwrap_or_default()
                    .to_owned();
                let sname = str_at(svc, "/metadata/name").unwrap_or_default().to_owned();
                let local = cache
                    .in_ns("endpointslices", &ns)
                    .filter(|sl| {
                        str_at(sl, "/metadata/labels/kubernetes.io~1service-name")
                            == Some(sname.as_str())
                    })
                    .flat_map(|sl| {
                        sl.get("endpoints")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter(|e| {
                        str_at(e, "/nodeName") == Some(name.as_str())
                            && e.pointer("/conditions/ready") == Some(&Value::Bool(true))
                    })
                    .count();
                Some((
                    u16::try_from(port).ok()?,
                    HttpApp::HealthCheck {
                        namespace: ns,
                        name: sname,
                        local_endpoints: local,
                    },
                ))
            })
            .collect();
        hosts.push(HostSpec {
            name: name.clone(),
            node: name,
            ip,
            is_node: true,
            servers: health,
            dns: None,
            relay_ports,
            ingress: None,
        });
    }
    for p in cache.all("pods") {
        if !pod_is_up(p) || p.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        let Some(ip) = str_at(p, "/status/podIP").and_then(|s| s.parse().ok()) else {
            continue;
        };
        let name = str_at(p, "/metadata/name").unwrap_or_default().to_owned();
        let ns = str_at(p, "/metadata/namespace").unwrap_or_default();
        let node = str_at(p, "/spec/nodeName").unwrap_or_default().to_owned();
        let mut servers = Vec::new();
        for c in p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let args: Vec<String> = c
                .get("args")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            if let Some(s) = HttpApp::for_container(image, &args, &name) {
                servers.push((s.1, s.0));
            }
        }
        let is_coredns = p
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c.get("image").and_then(Value::as_str).is_some_and(|i| {
                    crate::images::normalise(i).0 == "registry.k8s.io/coredns/coredns"
                })
            });
        // An ingress-nginx controller builds its nginx configuration from its informers.
        let ingress = crate::ingress::controller_flags(p).map(|flags| {
            let objects = crate::ingress::Objects {
                ingresses: cache.all("ingresses").collect(),
                classes: cache.all("ingressclasses").collect(),
                services: cache.all("services").collect(),
                slices: cache.all("endpointslices").collect(),
            };
            std::sync::Arc::new(crate::ingress::Controller::build(&flags, &objects))
        });
        hosts.push(HostSpec {
            name: format!("{ns}/{name}"),
            node,
            ip,
            is_node: false,
            servers,
            dns: is_coredns.then(|| snapshot.clone()),
            relay_ports: Vec::new(),
            ingress,
        });
    }
    let ext = cluster.config.external_ip;
    hosts.push(HostSpec {
        name: "external".into(),
        node: String::new(),
        ip: ext,
        is_node: false,
        servers: Vec::new(),
        dns: None,
        relay_ports: Vec::new(),
        ingress: None,
    });
    (nodes, hosts)
}

struct CurlArgs {
    url: String,
    silent: bool,
    show_errors: bool,
    verbose: bool,
    include: bool,
    head: bool,
    max_time_ms: Option<i64>,
    connect_timeout_ms: Option<i64>,
    headers: Vec<(String, String)>,
    trace: bool,
}

fn parse_curl(argv: &[String]) -> Result<CurlArgs, String> {
    let mut a = CurlArgs {
        url: String::new(),
        silent: false,
        show_errors: false,
        verbose: false,
        include: false,
        head: false,
        max_time_ms: None,
        connect_timeout_ms: None,
        headers: Vec::new(),
        trace: false,
    };
    let mut i = 0;
    let secs = |v: Option<&String>| -> Result<i64, String> {
        v.and_then(|s| s.parse::<f64>().ok())
            .map(|s| (s * 1000.0) as i64)
            .ok_or_else(|| "curl: option requires a number of seconds".to_owned())
    };
    while i < argv.len() {
        let arg = argv[i].as_str();
        match arg {
            "-s" | "--silent" => a.silent = true,
            "-S" | "--show-error" => a.show_errors = true,
            "-sS" | "-Ss" => {
                a.silent = true;
                a.show_errors = true;
            }
            "-v" | "--verbose" => a.verbose = true,
            "-i" | "--include" => a.include = true,
            "-I" | "--head" => a.head = true,
            "--trace-path" => a.trace = true,
            "-m" | "--max-time" => {
                i += 1;
                a.max_time_ms = Some(secs(argv.get(i))?);
            }
            "--connect-timeout" => {
                i += 1;
                a.connect_timeout_ms = Some(secs(argv.get(i))?);
            }
            "-H" | "--header" => {
                i += 1;
                let h = argv.get(i).ok_or("curl: option -H: requires parameter")?;
                let (k, v) = h.split_once(':').ok_or_else(|| format!("curl: bad header {h:?}"))?;
                a.headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            s if s.starts_with('-') => return Err(format!("curl: option {s}: is unknown\ncurl: try 'curl --help' or 'curl --manual' for more information")),
            url => a.url = url.to_owned(),
        }
        i += 1;
    }
    if a.url.is_empty() {
        return Err("curl: no URL specified!\ncurl: try 'curl --help' or 'curl --manual' for more information".into());
    }
    Ok(a)
}

/// Splits `http://host:port/path` (scheme optional).
fn split_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = match url.split_once("://") {
        Some(("http", r)) => r,
        Some((scheme, _)) => return Err(format!("curl: (1) Protocol \"{scheme}\" not supported")),
        None => url,
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], rest[i..].to_owned()),
        None => (rest, "/".to_owned()),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| "curl: (3) URL rejected: Port number was not a decimal number between 0 and 65535".to_owned())?),
        None => (hostport.to_owned(), 80),
    };
    Ok((host, port, path))
}

/// `curl` from `place`.
pub async fn curl(
    cluster: &mut Cluster,
    place: &Place,
    argv: &[String],
) -> Result<Output, ClusterError> {
    let mut out = Output::default();
    let a = match parse_curl(argv) {
        Ok(a) => a,
        Err(e) => {
            out.err(&format!("{e}\n"));
            out.exit = 2;
            return Ok(out);
        }
    };
    let (host, port, path) = match split_url(&a.url) {
        Ok(x) => x,
        Err(e) => {
            out.err(&format!("{e}\n"));
            out.exit = 3;
            return Ok(out);
        }
    };
    let host_header = a
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| {
            if port == 80 {
                host.clone()
            } else {
                format!("{host}:{port}")
            }
        });
    let method = if a.head { "HEAD" } else { "GET" };
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n");
    for (k, v) in a
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
    {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let head = a.head;
    // Linux gives up on an unanswered SYN after ~127 s (tcp_syn_retries=6).
    let connect_after = a.connect_timeout_ms.or(a.max_time_ms).unwrap_or(127_000);
    let total_after = a.max_time_ms.unwrap_or(300_000);
    let resolv = crate::dnsprobes::resolv_for(cluster, place);
    let id = (cluster.net_rng.next_u64() & 0xffff) as u16;
    let tracing = a.trace;
    let ran = with_network(cluster, place, tracing, |fabric, nf, from| {
        let dst = crate::dnsprobes::resolve(fabric, nf, from, &resolv, &host, id)?;
        let start = fabric.now_ms();
        let x = TcpExchange {
            from,
            dst,
            port,
            request: req.as_bytes(),
            connect_deadline_ms: start + connect_after,
            deadline_ms: start + total_after,
        };
        let r = fabric.tcp_exchange(nf, &x, |b| Response::parse(b, head).is_some());
        Some((dst, r, fabric.now_ms() - start))
    })
    .await?;
    let (result, trace) = match ran {
        Err(e) => {
            out.err(&e);
            out.exit = 1;
            return Ok(out);
        }
        Ok((None, _)) => {
            if !a.silent || a.show_errors {
                out.err(&format!("curl: (6) Could not resolve host: {host}\n"));
            }
            out.exit = 6;
            return Ok(out);
        }
        Ok((Some(r), trace)) => (r, trace),
    };
    let (dst, result, elapsed) = result;

    if a.verbose {
        out.err(&format!("*   Trying {dst}:{port}...\n"));
    }
    match result {
        Exchange::Done(bytes) => {
            if a.verbose {
                out.err(&format!("* Connected to {host} ({dst}) port {port}\n"));
                for l in req.trim_end_matches("\r\n").split("\r\n") {
                    out.err(&format!("> {l}\n"));
                }
                out.err(">\n");
            }
            match Response::parse(&bytes, head) {
                Some(resp) => {
                    if a.verbose {
                        out.err(&format!("< {}\n", resp.status_line));
                        for (k, v) in &resp.headers {
                            out.err(&format!("< {k}: {v}\n"));
                        }
                        out.err("<\n");
                    }
                    if a.include || a.head {
                        let mut h = format!("{}\n", resp.status_line);
                        for (k, v) in &resp.headers {
                            h.push_str(&format!("{k}: {v}\n"));
                        }
                        h.push('\n');
                        out.out(&h);
                    }
                    out.out(&String::from_utf8_lossy(&resp.body));
                    if a.verbose {
                        out.err(&format!("* Connection #0 to host {host} left intact\n"));
                    }
                }
                None => {
                    out.err("curl: (52) Empty reply from server\n");
                    out.exit = 52;
                }
            }
        }
        Exchange::Refused => {
            if !a.silent || a.show_errors {
                // curl 7.81.0, the nodes' Ubuntu 22.04 one: the errno's text (curl 8 says
                // "Couldn't connect to server").
                out.err(&format!("curl: (7) Failed to connect to {host} port {port} after {elapsed} ms: Connection refused\n"));
            }
            out.exit = 7;
        }
        Exchange::TimedOut { connected } => {
            if !a.silent || a.show_errors {
                if connected {
                    out.err(&format!("curl: (28) Operation timed out after {elapsed} milliseconds with 0 bytes received\n"));
                } else {
                    out.err(&format!(
                        "curl: (28) Connection timed out after {elapsed} milliseconds\n"
                    ));
                }
            }
            out.exit = 28;
        }
    }
    if a.trace {
        out.out(&format!(
            "--- packet path from {} to {dst}:{port} ---\n",
            place.host_name()
        ));
        for l in trace {
            out.out(&format!("{l}\n"));
        }
    }
    Ok(out)
}

/// `ping [-c N] [--trace-path] HOST` (iputils' output). Without `-c` it sends 4: a
/// transcript cannot press Ctrl-C. `--trace-path` (netsim's) prints the echoes' path.
pub async fn ping(
    cluster: &mut Cluster,
    place: &Place,
    argv: &[String],
) -> Result<Output, ClusterError> {
    let mut out = Output::default();
    let mut count: u16 = 4;
    let mut target = None;
    let mut tracing = false;
    let mut i = 0;
    while i < argv.len() {
        match argv[i].as_str() {
            "--trace-path" => tracing = true,
            "-c" => {
                i += 1;
                count = argv
                    .get(i)
                    .and_then(|c| c.parse().ok())
                    .filter(|c| *c > 0)
                    .unwrap_or(4);
            }
            a if a.starts_with("-c") => count = a[2..].parse().unwrap_or(4),
            a if a.starts_with('-') => {}
            a => target = Some(a.to_owned()),
        }
        i += 1;
    }
    let Some(target) = target else {
        out.err("ping: usage error: Destination address required\n");
        out.exit = 1;
        return Ok(out);
    };
    let resolv = crate::dnsprobes::resolv_for(cluster, place);
    let id = (cluster.net_rng.next_u64() & 0xffff) as u16;
    let ident = (cluster.net_rng.next_u64() & 0xffff) as u16;
    let ran = with_network(cluster, place, tracing, |fabric, nf, from| {
        let dst = crate::dnsprobes::resolve(fabric, nf, from, &resolv, &target, id)?;
        Some((dst, fabric.ping(nf, from, dst, count, ident)))
    })
    .await?;
    let (ran, trace) = match ran {
        Ok((r, trace)) => (Ok(r), trace),
        Err(e) => (Err(e), Vec::new()),
    };
    let (dst, echoes) = match ran {
        Err(e) => {
            out.err(&e);
            out.exit = 1;
            return Ok(out);
        }
        Ok(None) => {
            out.err(&format!(
                "ping: {target}: Temporary failure in name resolution\n"
            ));
            out.exit = 2;
            return Ok(out);
        }
        Ok(Some(r)) => r,
    };
    out.out(&format!("PING {target} ({dst}) 56(84) bytes of data.\n"));
    for (n, e) in echoes.iter().enumerate() {
        match e {
            Echo::Reply { ttl } => out.out(&format!(
                "64 bytes from {dst}: icmp_seq={} ttl={ttl} time=0.000 ms\n",
                n + 1
            )),
            Echo::Unreachable { from } => out.out(&format!(
                "From {from} icmp_seq={} Destination Port Unreachable\n",
                n + 1
            )),
            Echo::Lost => {}
        }
    }
    let received = echoes
        .iter()
        .filter(|e| matches!(e, Echo::Reply { .. }))
        .count();
    let errors = echoes
        .iter()
        .filter(|e| matches!(e, Echo::Unreachable { .. }))
        .count();
    let sent = echoes.len();
    let loss = (sent - received) * 100 / sent.max(1);
    let errors = if errors > 0 {
        format!(" +{errors} errors,")
    } else {
        String::new()
    };
    out.out(&format!("\n--- {target} ping statistics ---\n"));
    // iputils times the run up to the last echo sent (`cur_time` is taken in `pinger`), so
    // lost replies add nothing: `-c 1` with no answer says `time 0ms`.
    let elapsed = (sent.saturating_sub(1) as i64) * 1000;
    out.out(&format!(
        "{sent} packets transmitted, {received} received,{errors} {loss}% packet loss, time {elapsed}ms\n"
    ));
    if received > 0 {
        out.out("rtt min/avg/max/mdev = 0.000/0.000/0.000/0.000 ms\n");
    } else {
        out.exit = 1;
    }
    if tracing {
        out.out(&format!(
            "--- packet path from {} to {dst} ---\n",
            place.host_name()
        ));
        for l in trace {
            out.out(&format!("{l}\n"));
        }
    }
    Ok(out)
}

/// Builds the network as it is now, runs `f` from `place`'s host, and moves the cluster's
/// clock to where the network's ended. `Err` is a message when the place has no network.
pub async fn with_network<R>(
    cluster: &mut Cluster,
    place: &Place,
    tracing: bool,
    f: impl FnOnce(&mut Fabric<'_>, &mut KubeProxy<'_>, usize) -> R,
) -> Result<Result<(R, Vec<String>), String>, ClusterError> {
    let tables = cluster
        .rule_tables()
        .map_err(|e| ClusterError::Api(apiserver::ApiError::internal(e.to_string())))?;
    let (nodes, hosts) = topology(cluster, &tables);
    let speakers = cluster.lb_speakers();
    let from_name = place.host_name();
    let start = cluster.now_ms();
    let seed = cluster.config.seed;
    let (r, end) = {
        let Cluster {
            net,
            proxy_states,
            net_rng,
            ..
        } = cluster;
        let mut fabric = Fabric::new(nodes, hosts, net, start, seed);
        fabric.set_lb_owners(speakers);
        fabric.set_tracing(tracing);
        let Some(from) = fabric.host_index(&from_name) else {
            return Ok(Err(format!(
                "netsim: {from_name} has no network (is it running?)\n"
            )));
        };
        let mut nf = KubeProxy {
            tables: &tables,
            states: proxy_states,
            rng: net_rng,
        };
        let r = f(&mut fabric, &mut nf, from);
        let trace = std::mem::take(&mut fabric.trace);
        ((r, trace), fabric.now_ms())
    };
    cluster.advance_to(end).await?;
    Ok(Ok(r))
}

/// `dig` and `nslookup` from `place`.
pub async fn dns_tool(
    cluster: &mut Cluster,
    place: &Place,
    argv: &[String],
    cmdline: &str,
) -> Result<Output, ClusterError> {
    let resolv = crate::dnsprobes::resolv_for(cluster, place);
    let id = (cluster.net_rng.next_u64() & 0xffff) as u16;
    let mut cookie = [0u8; 8];
    cookie.copy_from_slice(&cluster.net_rng.next_u64().to_be_bytes());
    let when = apiserver::sim::to_datetime(cluster.now_ms())
        .format("%a %b %d %H:%M:%S UTC %Y")
        .to_string();
    let is_dig = argv[0] == "dig";
    // `--trace-path` is netsim's own flag (as on curl): it is not dig's, so it is taken out
    // of the arguments and of the command line dig echoes.
    let tracing = argv.iter().any(|a| a == "--trace-path");
    let argv: Vec<String> = argv
        .iter()
        .filter(|a| *a != "--trace-path")
        .cloned()
        .collect();
    let cmdline = cmdline.replace(" --trace-path", "");
    let cmdline = cmdline.as_str();
    let ran = with_network(cluster, place, tracing, |fabric, nf, from| {
        if is_dig {
            crate::dnsprobes::dig(
                fabric,
                nf,
                from,
                &resolv,
                &argv[1..],
                &crate::dnsprobes::DigCall {
                    cmdline,
                    id,
                    cookie,
                    when: &when,
                },
            )
        } else {
            crate::dnsprobes::nslookup(fabric, nf, from, &resolv, &argv[1..], id)
        }
    })
    .await?;
    Ok(match ran {
        Ok((mut o, trace)) => {
            if tracing {
                o.out(&format!(
                    "--- packet path of the queries from {} ---\n",
                    place.host_name()
                ));
                for l in trace {
                    o.out(&format!("{l}\n"));
                }
            }
            o
        }
        Err(e) => {
            let mut o = Output::default();
            o.err(&e);
            o.exit = 1;
            o
        }
    })
}

/// `cat FILE`: only `/etc/resolv.conf` exists in the simulated file systems.
pub fn cat(cluster: &Cluster, place: &Place, argv: &[String]) -> Output {
    let mut out = Output::default();
    for f in &argv[1..] {
        if f == "/etc/resolv.conf" {
            out.out(&crate::dnsprobes::resolv_for(cluster, place).text);
        } else {
            out.err(&format!("cat: {f}: No such file or directory\n"));
            out.exit = 1;
        }
    }
    out
}

/// ctime-style time for iptables-save headers (`Tue Oct 27 10:05:12 2020`).
fn ctime(ms: i64) -> String {
    apiserver::sim::to_datetime(ms)
        .format("%a %b %e %H:%M:%S %Y")
        .to_string()
}

/// The rule views, run on node `node`.
pub fn view(cluster: &Cluster, node: &str, argv: &[String]) -> Output {
    let mut out = Output::default();
    let tables = match cluster.rule_tables() {
        Ok(t) => t,
        Err(e) => {
            out.err(&format!("{e}\n"));
            out.exit = 1;
            return out;
        }
    };
    let Some(rt) = tables.get(node) else {
        out.err(&format!("{}: not on a node\n", argv[0]));
        out.exit = 1;
        return out;
    };
    let flag = |f: &str| {
        argv.iter()
            .position(|a| a == f)
            .and_then(|i| argv.get(i + 1))
            .map(String::as_str)
    };
    let has = |f: &str| {
        argv.iter().any(|a| {
            a == f
                || (f.len() == 2
                    && a.starts_with('-')
                    && !a.starts_with("--")
                    && a.contains(&f[1..]))
        })
    };
    match argv[0].as_str() {
        "iptables-save" => out.out(&proxy::iptables_save(
            rt,
            flag("-t"),
            &ctime(cluster.now_ms()),
        )),
        "iptables" => {
            let table = flag("-t").unwrap_or("filter");
            let chain = argv
                .iter()
                .position(|a| a == "-L" || a == "--list")
                .and_then(|i| argv.get(i + 1))
                .filter(|c| !c.starts_with('-'))
                .map(String::as_str);
            if !argv
                .iter()
                .any(|a| a == "-L" || a == "--list" || a.starts_with("-L") || a.starts_with("-nL"))
            {
                out.err(
                    "iptables: netsim shows rules with -L (and -t TABLE, -n, --line-numbers)\n",
                );
                out.exit = 2;
                return out;
            }
            match proxy::iptables_list(
                rt,
                table,
                chain,
                has("-n"),
                argv.iter().any(|a| a == "--line-numbers"),
            ) {
                Some(s) => out.out(&s),
                None => {
                    out.err("iptables: No chain/target/match by that name.\n");
                    out.exit = 1;
                }
            }
        }
        "ipvsadm" => {
            // -L lists (also without it), -n is implied (names are never resolved), -c
            // lists the connections instead of the services.
            let mut connections = false;
            for a in &argv[1..] {
                let ok = match a.as_str() {
                    "--list" | "--numeric" => true,
                    "--connection" => {
                        connections = true;
                        true
                    }
                    s if s.starts_with('-') && !s.starts_with("--") && s.len() > 1 => {
                        connections |= s.contains('c');
                        s[1..].chars().all(|c| matches!(c, 'L' | 'l' | 'n' | 'c'))
                    }
                    _ => false,
                };
                if !ok {
                    out.err(&format!(
                        "ipvsadm: netsim lists the tables with -L [-n] [-c], not {a}\n"
                    ));
                    out.exit = 2;
                    return out;
                }
            }
            let conns = ipvs_conns(cluster, node);
            if connections {
                out.out(&proxy::ipvsadm_lnc(&conns));
            } else {
                out.out(&proxy::ipvsadm_ln(rt, &conns));
            }
        }
        "nft" => out.out(&proxy::nft_list_ruleset(rt)),
        "conntrack" => {
            let mut n = 0;
            for (o, r, left) in cluster.net.conntrack(node, cluster.now_ms()) {
                let proto = o.proto.name();
                let pnum = match proto {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => 1,
                };
                // Every simulated exchange has finished: TCP flows sit in TIME_WAIT.
                let state = if proto == "tcp" { " TIME_WAIT" } else { "" };
                out.out(&format!(
                    "{proto:<8} {pnum} {left}{state} src={} dst={} sport={} dport={} src={} dst={} sport={} dport={} [ASSURED] mark=0 use=1\n",
                    o.src, o.dst, o.sport, o.dport, r.src, r.dst, r.sport, r.dport
                ));
                n += 1;
            }
            out.err(&format!(
                "conntrack v1.4.7 (conntrack-tools): {n} flow entries have been shown.\n"
            ));
        }
        _ => {}
    }
    out
}

/// The node's IPVS connections, as the kernel's table would hold them: an entry's original
/// source is the client, its original destination the virtual server, its reply source the
/// real server. Every simulated exchange has finished by the time a command runs, so TCP
/// connections sit in TIME_WAIT.
fn ipvs_conns(cluster: &Cluster, node: &str) -> Vec<proxy::IpvsConn> {
    let now = cluster.now_ms();
    cluster
        .net
        .ipvs_conns(node, now)
        .into_iter()
        .filter_map(|(o, r, expires_s)| {
            let proto = crate::cluster::kubeproxy::proxy_proto(o.proto)?;
            Some(proxy::IpvsConn {
                proto,
                client: o.src,
                cport: o.sport,
                vip: o.dst,
                vport: o.dport,
                rip: r.src,
                rport: r.sport,
                state: match proto {
                    proxy::Proto::Udp => proxy::IpvsConnState::Udp,
                    _ => proxy::IpvsConnState::TimeWait,
                },
                expires_s,
            })
        })
        .collect()
}

fn mac_of(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:42:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

fn broadcast(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let host_bits = 32 - u32::from(prefix);
    Ipv4Addr::from(u32::from(ip) | ((1u64 << host_bits) - 1) as u32)
}

/// `ip addr` / `ip route` (iproute2) for a node or a pod: the interfaces the simulation
/// models — eth0 on the node network, the cni0 bridge with one veth per pod, kube-ipvs0 in
/// ipvs mode — and the host-gw routes.
pub fn ip(cluster: &Cluster, place: &Place, argv: &[String]) -> Output {
    let mut out = Output::default();
    let what = argv.get(1).map(String::as_str).unwrap_or("");
    let cache = cluster.cache();
    let nodes: Vec<(String, Ipv4Addr, Ipv4Addr)> = cache
        .all("nodes")
        .map(|n| {
            let name = str_at(n, "/metadata/name").unwrap_or_default().to_owned();
            let ip = str_at(n, "/status/addresses/0/address")
                .and_then(|s| s.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            let cidr = str_at(n, "/spec/podCIDR")
                .and_then(|c| c.split('/').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or(Ipv4Addr::UNSPECIFIED);
            (name, ip, cidr)
        })
        .collect();
    let lo = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n";
    let lft = "       valid_lft forever preferred_lft forever\n";
    match (place, what) {
        (Place::Node(node), "addr" | "a" | "address") => {
            let Some((_, ip, cidr)) = nodes.iter().find(|(n, _, _)| n == node).cloned() else {
                return out;
            };
            let gw = Ipv4Addr::from(u32::from(cidr) + 1);
            let mut s = lo.to_owned();
            s.push_str(&format!("2: eth0@if{}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default \n    link/ether {} brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet {ip}/16 brd {} scope global eth0\n{lft}", 10 + ip.octets()[3], mac_of(ip), broadcast(ip, 16)));
            s.push_str(&format!("3: cni0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default qlen 1000\n    link/ether {} brd ff:ff:ff:ff:ff:ff\n    inet {gw}/24 brd {} scope global cni0\n{lft}", mac_of(gw), broadcast(gw, 24)));
            let mut idx = 4;
            if cluster
                .proxy_modes
                .get(node)
                .map(String::as_str)
                .unwrap_or(&cluster.config.proxy_mode)
                == "ipvs"
            {
                if let Ok(tables) = cluster.rule_tables() {
                    if let Some(rt) = tables.get(node) {
                        s.push_str(&format!("{idx}: kube-ipvs0: <BROADCAST,NOARP> mtu 1500 qdisc noop state DOWN group default \n    link/ether 6a:5e:2c:0f:11:d5 brd ff:ff:ff:ff:ff:ff\n"));
                        for a in &rt.ipvs_addrs {
                            s.push_str(&format!("    inet {a}/32 scope global kube-ipvs0\n{lft}"));
                        }
                        idx += 1;
                    }
                }
            }
            for p in cache
                .all("pods")
                .filter(|p| str_at(p, "/spec/nodeName") == Some(node.as_str()))
            {
                if p.pointer("/spec/hostNetwork").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let Some(pip) = str_at(p, "/status/podIP").and_then(|s| s.parse::<Ipv4Addr>().ok())
                else {
                    continue;
                };
                let h = str_at(p, "/metadata/uid")
                    .unwrap_or_default()
                    .replace('-', "");
                s.push_str(&format!(
                    "{idx}: veth{}@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue master cni0 state UP group default \n    link/ether {} brd ff:ff:ff:ff:ff:ff link-netns cni-{}\n",
                    &h.get(..8).unwrap_or("00000000"),
                    mac_of(Ipv4Addr::from(u32::from(pip) ^ 0x0a00_0000)),
                    str_at(p, "/metadata/uid").unwrap_or_default()
                ));
                idx += 1;
            }
            out.out(&s);
        }
        (Place::Node(node), "route" | "r") => {
            let Some((_, ip, cidr)) = nodes.iter().find(|(n, _, _)| n == node).cloned() else {
                return out;
            };
            let mut s = "default via 172.18.0.1 dev eth0 \n".to_owned();
            let mut by_cidr = nodes.clone();
            by_cidr.sort_by_key(|(_, _, c)| u32::from(*c));
            for (n, nip, ncidr) in &by_cidr {
                if n == node {
                    s.push_str(&format!(
                        "{ncidr}/24 dev cni0 proto kernel scope link src {} \n",
                        Ipv4Addr::from(u32::from(cidr) + 1)
                    ));
                } else {
                    s.push_str(&format!("{ncidr}/24 via {nip} dev eth0 \n"));
                }
            }
            s.push_str(&format!(
                "172.18.0.0/16 dev eth0 proto kernel scope link src {ip} \n"
            ));
            out.out(&s);
        }
        (Place::Pod { namespace, name }, w)
            if matches!(w, "addr" | "a" | "address" | "route" | "r") =>
        {
            let Some(p) = cache.get("pods", &format!("{namespace}/{name}")) else {
                return out;
            };
            let Some(pip) = str_at(p, "/status/podIP").and_then(|s| s.parse::<Ipv4Addr>().ok())
            else {
                return out;
            };
            let gw = Ipv4Addr::from((u32::from(pip) & 0xffff_ff00) + 1);
            if w.starts_with('r') {
                out.out(&format!("default via {gw} dev eth0 \n{}/24 dev eth0 proto kernel scope link src {pip} \n", Ipv4Addr::from(u32::from(pip) & 0xffff_ff00)));
            } else {
                out.out(&format!(
                    "{lo}2: eth0@if7: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default \n    link/ether {} brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet {pip}/24 brd {} scope global eth0\n{lft}",
                    mac_of(Ipv4Addr::from(u32::from(pip) ^ 0x0a00_0000)),
                    broadcast(pip, 24)
                ));
            }
        }
        _ => {
            out.err("netsim: `ip addr` and `ip route` are simulated\n");
            out.exit = 1;
        }
    }
    out
}
