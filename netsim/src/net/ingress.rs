//! The ingress-nginx controller's nginx on a pod's interface: a process on the host that
//! accepts a client connection on port 80, reads the request, routes it (`ingress::route`),
//! opens a new TCP connection from the pod to the chosen endpoint pod, sends the request
//! with the headers ingress-nginx sets, reads the whole response and writes it back to the
//! client with nginx's own headers. Real ingress-nginx does not buffer (its default
//! `proxy-buffering: off` streams the body as it arrives); reading first is a
//! simplification that gives the client the same bytes for the short, complete responses
//! the simulated apps send, though a slow upstream's partial body is never relayed early.
//! Like userspace kube-proxy's relay, every byte travels as packets through the fabric.
//!
//! Answers nginx gives itself: 404 (no route: the default backend), 503 (the upstream has
//! no endpoints), 502 (the endpoint refused or closed without a response) and 504
//! (`proxy_connect_timeout`, 60 s). ingress-nginx's `more_clear_headers Server` (with the
//! default `server-tokens: false`) means no `Server` header on any of its responses.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use apiserver::sim::SimRng;
use smoltcp::iface::{Interface, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::wire::IpAddress;

use super::http::{http_date, Request, Response};
use crate::ingress::route::{round_robin, Target};
use crate::ingress::Controller;

/// nginx's `proxy_connect_timeout` default.
const CONNECT_TIMEOUT_MS: i64 = 60_000;

/// What the controller's proxying keeps across commands: the balancer's cursors and the
/// stream `$request_id` is drawn from.
#[derive(Debug, Default)]
pub struct IngressState {
    /// Controller pod (fabric host name) → upstream → round-robin cursor.
    pub cursors: BTreeMap<String, BTreeMap<String, usize>>,
    pub rng: Option<SimRng>,
}

enum Phase {
    Reading,
    Upstream {
        sock: SocketHandle,
        request: Vec<u8>,
        sent: bool,
        head: bool,
        response: Vec<u8>,
        started_ms: i64,
    },
    Replied,
}

/// One of nginx's accepting connections.
pub(super) struct Conn {
    port: u16,
    client: SocketHandle,
    buf: Vec<u8>,
    phase: Phase,
}

impl Conn {
    pub(super) fn listen(sockets: &mut SocketSet<'static>, port: u16) -> Conn {
        let mut s = super::tcp_socket();
        let _ = s.listen(port);
        Conn {
            port,
            client: sockets.add(s),
            buf: Vec::new(),
            phase: Phase::Reading,
        }
    }
}

/// What one step of the controller needs from the fabric.
pub(super) struct Ctx<'a> {
    pub controller: &'a Arc<Controller>,
    pub host: &'a str,
    pub now_ms: i64,
    pub next_port: &'a mut u16,
    pub state: &'a mut IngressState,
    pub seed: u64,
    /// `--trace-path`: where the routing decision is noted.
    pub trace: Option<&'a mut Vec<String>>,
}

impl Ctx<'_> {
    fn note(&mut self, line: String) {
        if let Some(t) = self.trace.as_deref_mut() {
            t.push(format!("{}: nginx: {line}", self.host));
        }
    }
}

fn error_page(code: u16, reason: &str) -> String {
    format!("<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body>\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
}

/// A response nginx writes itself.
fn own_response(code: u16, reason: &str, date: &str, head: bool) -> Vec<u8> {
    let body = error_page(code, reason);
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nDate: {date}\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The request toward the upstream: the headers ingress-nginx's template sets, in its
/// order, then the client's own headers that none of those replace.
fn upstream_request(req: &Request, remote: Ipv4Addr, request_id: &str, port: u16) -> Vec<u8> {
    let host = req.header("host").unwrap_or_default();
    let mut out = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", req.method, req.target);
    let id = req
        .header("x-request-id")
        .filter(|v| !v.is_empty())
        .unwrap_or(request_id);
    for (k, v) in [
        ("X-Request-ID", id.to_owned()),
        ("X-Real-IP", remote.to_string()),
        ("X-Forwarded-For", remote.to_string()),
        ("X-Forwarded-Host", host.to_owned()),
        ("X-Forwarded-Port", port.to_string()),
        ("X-Forwarded-Proto", "http".to_owned()),
        ("X-Forwarded-Scheme", "http".to_owned()),
        ("X-Scheme", "http".to_owned()),
    ] {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    // An empty value means nginx sends no header at all.
    for (k, from) in [
        ("X-Original-Forwarded-For", "x-forwarded-for"),
        ("X-Original-Forwarded-Host", "x-forwarded-host"),
    ] {
        if let Some(v) = req.header(from).filter(|v| !v.is_empty()) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    const REPLACED: &[&str] = &[
        "host",
        "connection",
        "upgrade",
        "proxy",
        "x-request-id",
        "x-real-ip",
        "x-forwarded-for",
        "x-forwarded-host",
        "x-forwarded-port",
        "x-forwarded-proto",
        "x-forwarded-scheme",
        "x-scheme",
        "x-original-forwarded-for",
        "x-original-forwarded-host",
    ];
    for (k, v) in &req.headers {
        if !REPLACED.contains(&k.to_ascii_lowercase().as_str()) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// The upstream's response as nginx relays it: its own Date, Content-Type and
/// Content-Length, `Connection: keep-alive`, then the upstream's other headers (not its
/// Server, Date or hop-by-hop headers).
fn client_response(up: &Response, date: &str, head: bool) -> Vec<u8> {
    let mut out = format!("{}\r\nDate: {date}\r\n", up.status_line);
    if let Some(ct) = up.header("content-type") {
        out.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    let len = up
        .header("content-length")
        .map_or(up.body.len().to_string(), str::to_owned);
    out.push_str(&format!(
        "Content-Length: {len}\r\nConnection: keep-alive\r\n"
    ));
    const DROPPED: &[&str] = &[
        "server",
        "date",
        "content-type",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
    ];
    for (k, v) in &up.headers {
        if !DROPPED.contains(&k.to_ascii_lowercase().as_str()) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    if !head {
        out.extend_from_slice(&up.body);
    }
    out
}

fn take_port(next_port: &mut u16) -> u16 {
    let p = *next_port;
    *next_port = if p >= 60999 { 32768 } else { p + 1 };
    p
}

/// One step of a connection: accept → read the request → route → connect → relay.
pub(super) fn pump(
    c: &mut Conn,
    iface: &mut Interface,
    sockets: &mut SocketSet<'static>,
    cx: &mut Ctx<'_>,
) {
    let date = http_date(cx.now_ms);
    if matches!(c.phase, Phase::Reading) {
        let sock = sockets.get_mut::<tcp::Socket>(c.client);
        let mut chunk = [0u8; 4096];
        while sock.can_recv() {
            match sock.recv_slice(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => c.buf.extend_from_slice(&chunk[..n]),
            }
        }
        if let Some(req) = Request::parse(&c.buf) {
            let remote = match sock.remote_endpoint().map(|e| e.addr) {
                Some(IpAddress::Ipv4(a)) => a,
                None => Ipv4Addr::UNSPECIFIED,
            };
            let head = req.method == "HEAD";
            let host = req.header("host").unwrap_or_default().to_owned();
            let routed = cx.controller.routes.route(&host, &req.path);
            let upstream = match &routed.location.target {
                Target::DefaultBackend => None,
                Target::Upstream(name) => Some(name.clone()),
            };
            let reply = |code, reason| own_response(code, reason, &date, head);
            let decided = format!(
                "{} {} Host {} -> server {} location {}{}",
                req.method,
                req.target,
                if host.is_empty() { "(none)" } else { &host },
                routed.server.name,
                if routed.location.kind == crate::ingress::route::Match::Exact {
                    "= "
                } else {
                    ""
                },
                routed.location.path
            );
            match upstream {
                None => {
                    cx.note(format!("{decided} -> default backend: 404"));
                    let _ = sock.send_slice(&reply(404, "Not Found"));
                    c.phase = Phase::Replied;
                }
                Some(name) => {
                    let eps: &[SocketAddrV4] = cx
                        .controller
                        .upstreams
                        .get(&name)
                        .map_or(&[], Vec::as_slice);
                    let cursors = cx.state.cursors.entry(cx.host.to_owned()).or_default();
                    match round_robin(cursors, &name, eps) {
                        None => {
                            cx.note(format!(
                                "{decided} -> upstream {name} has no endpoints: 503"
                            ));
                            let _ = sock.send_slice(&reply(503, "Service Temporarily Unavailable"));
                            c.phase = Phase::Replied;
                        }
                        Some(ep) => {
                            cx.note(format!(
                                "{decided} -> upstream {name} -> {ep} (round robin); new connection from {}",
                                iface
                                    .ipv4_addr()
                                    .map_or_else(String::new, |a| a.to_string())
                            ));
                            let seed = cx.seed;
                            let rng = cx
                                .state
                                .rng
                                .get_or_insert_with(|| SimRng::new(seed, "ingress-nginx"));
                            let mut request = upstream_request(&req, remote, &rng.hex(32), c.port);
                            // Body bytes that came with the head go along (curl sends
                            // none; a later body is not modelled).
                            if let Some(end) = c.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                request.extend_from_slice(&c.buf[end + 4..]);
                            }
                            let mut up = super::tcp_socket();
                            let local = take_port(cx.next_port);
                            if up
                                .connect(
                                    iface.context(),
                                    (IpAddress::Ipv4(*ep.ip()), ep.port()),
                                    local,
                                )
                                .is_ok()
                            {
                                c.phase = Phase::Upstream {
                                    sock: sockets.add(up),
                                    request,
                                    sent: false,
                                    head,
                                    response: Vec::new(),
                                    started_ms: cx.now_ms,
                                };
                            } else {
                                let _ = sockets
                                    .get_mut::<tcp::Socket>(c.client)
                                    .send_slice(&reply(502, "Bad Gateway"));
                                c.phase = Phase::Replied;
                            }
                        }
                    }
                }
            }
        }
    }
    if let Phase::Upstream {
        sock,
        request,
        sent,
        head,
        response,
        started_ms,
    } = &mut c.phase
    {
        let up = sockets.get_mut::<tcp::Socket>(*sock);
        if !*sent && up.state() == tcp::State::Established && up.can_send() {
            let _ = up.send_slice(request);
            *sent = true;
        }
        let mut chunk = [0u8; 4096];
        while up.can_recv() {
            match up.recv_slice(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&chunk[..n]),
            }
        }
        let connecting = matches!(up.state(), tcp::State::SynSent | tcp::State::SynReceived);
        let answer = match Response::parse(response, *head) {
            Some(r) => Some(client_response(&r, &date, *head)),
            None if connecting && cx.now_ms - *started_ms >= CONNECT_TIMEOUT_MS => {
                Some(own_response(504, "Gateway Time-out", &date, *head))
            }
            // Refused (RST) or closed before a whole response.
            None if !connecting && !up.may_recv() => {
                Some(own_response(502, "Bad Gateway", &date, *head))
            }
            None => None,
        };
        if let Some(bytes) = answer {
            // The upstream connection finishes its FIN exchange on its own (the socket
            // stays in the set for the rest of the command and is never reused).
            if connecting {
                up.abort();
            } else {
                up.close();
            }
            let _ = sockets.get_mut::<tcp::Socket>(c.client).send_slice(&bytes);
            c.phase = Phase::Replied;
        }
    }
    let client = sockets.get_mut::<tcp::Socket>(c.client);
    if matches!(c.phase, Phase::Replied) && !client.may_recv() && client.send_queue() == 0 {
        // The client closed its end (curl after reading the body): close ours.
        client.close();
    }
    if matches!(client.state(), tcp::State::Closed | tcp::State::TimeWait) {
        client.abort();
        let _ = client.listen(c.port);
        c.buf.clear();
        if let Phase::Upstream { sock, .. } = &c.phase {
            sockets.get_mut::<tcp::Socket>(*sock).abort();
        }
        c.phase = Phase::Reading;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_404_page_is_nginx_s_146_bytes_with_no_server_header() {
        assert_eq!(error_page(404, "Not Found").len(), 146);
        let r = own_response(404, "Not Found", "d", false);
        let text = String::from_utf8_lossy(&r);
        assert!(
            text.starts_with("HTTP/1.1 404 Not Found\r\nDate: d\r\n"),
            "{text}"
        );
        assert!(!text.contains("Server:"), "{text}");
    }

    #[test]
    fn upstream_request_replaces_forwarded_for_and_keeps_the_original() {
        let req = Request::parse(
            b"GET /a?b=1 HTTP/1.1\r\nHost: www1.atguigu.com\r\nUser-Agent: curl/8.5.0\r\nX-Forwarded-For: 1.2.3.4\r\nAccept: */*\r\n\r\n",
        )
        .unwrap();
        let out = upstream_request(&req, Ipv4Addr::new(10, 244, 1, 1), "abc", 80);
        let up = Request::parse(&out).unwrap();
        assert_eq!(up.target, "/a?b=1");
        assert_eq!(up.header("x-forwarded-for"), Some("10.244.1.1"));
        assert_eq!(up.header("x-original-forwarded-for"), Some("1.2.3.4"));
        assert_eq!(up.header("x-real-ip"), Some("10.244.1.1"));
        assert_eq!(up.header("x-request-id"), Some("abc"));
        assert_eq!(up.header("x-forwarded-port"), Some("80"));
        assert_eq!(up.header("user-agent"), Some("curl/8.5.0"));
        assert_eq!(
            up.headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("x-forwarded-for"))
                .count(),
            1
        );
    }

    #[test]
    fn relayed_response_drops_the_upstream_server_and_date() {
        let up = Response::parse(
            b"HTTP/1.1 200 OK\r\nServer: nginx/1.12.2\r\nDate: old\r\nContent-Type: text/html\r\nContent-Length: 3\r\nLast-Modified: x\r\nConnection: keep-alive\r\nETag: \"e\"\r\n\r\nhi\n",
            false,
        )
        .unwrap();
        let out = String::from_utf8(client_response(&up, "now", false)).unwrap();
        assert_eq!(
            out,
            "HTTP/1.1 200 OK\r\nDate: now\r\nContent-Type: text/html\r\nContent-Length: 3\r\nConnection: keep-alive\r\nLast-Modified: x\r\nETag: \"e\"\r\n\r\nhi\n"
        );
    }
}
