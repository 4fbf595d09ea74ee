//! What the simulated images serve over HTTP/1.1, and the HTTP client side of `curl`.
//! Responses are built as the real servers build them (nginx for myapp, echoserver's
//! request dump, http-echo's text); the bytes travel as TCP segments through the fabric.

use crate::images;

/// A server an image runs, chosen by image, not by `containerPort` (as on a real node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpApp {
    /// `wangyanglinux/myapp:vN` (nginx 1.12.2 serving two pages).
    MyApp { version: String, pod: String },
    /// `nginx:*`: the default welcome page.
    Nginx { version: String },
    /// `registry.k8s.io/echoserver`: echoes what it received, client address included.
    EchoServer { pod: String, port: u16 },
    /// `hashicorp/http-echo -text=...`.
    HttpEcho { text: String },
    /// kube-proxy's health check on a Service's healthCheckNodePort
    /// (`externalTrafficPolicy: Local`): 200 while this node has local endpoints, else 503.
    HealthCheck {
        namespace: String,
        name: String,
        local_endpoints: usize,
    },
}

impl HttpApp {
    /// The app and port a container of `image` listens on, if it serves HTTP.
    pub fn for_container(image: &str, args: &[String], pod: &str) -> Option<(HttpApp, u16)> {
        let (repo, tag) = images::normalise(image);
        images::lookup(image)?;
        match &*repo {
            "wangyanglinux/myapp" => Some((
                HttpApp::MyApp {
                    version: tag.to_owned(),
                    pod: pod.to_owned(),
                },
                80,
            )),
            "nginx" => {
                let version = if tag.chars().next().is_some_and(|c| c.is_ascii_digit()) {
                    tag.to_owned()
                } else {
                    "1.27.3".to_owned()
                };
                Some((HttpApp::Nginx { version }, 80))
            }
            "registry.k8s.io/echoserver" => Some((
                HttpApp::EchoServer {
                    pod: pod.to_owned(),
                    port: 8080,
                },
                8080,
            )),
            "hashicorp/http-echo" => {
                let mut text = String::new();
                let mut port = 5678;
                for a in args {
                    if let Some(t) = a.strip_prefix("-text=") {
                        text = t.to_owned();
                    }
                    if let Some(l) = a.strip_prefix("-listen=:") {
                        port = l.parse().unwrap_or(5678);
                    }
                }
                Some((HttpApp::HttpEcho { text }, port))
            }
            _ => None,
        }
    }

    /// The full response to one request.
    pub fn respond(
        &self,
        req: &Request,
        client: std::net::SocketAddrV4,
        http_date: &str,
    ) -> Vec<u8> {
        let (status, server, ctype, body, extra): (&str, String, &str, String, String) = match self
        {
            HttpApp::MyApp { version, pod } => {
                let server = "nginx/1.12.2".to_owned();
                match req.path.as_str() {
                    "/" | "/index.html" => {
                        let body = format!("Hello MyApp | Version: {version} | <a href=\"hostname.html\">Pod Name</a>\n");
                        let mtime = myapp_index_mtime(version);
                        let extra = format!(
                            "Last-Modified: {}\r\nConnection: keep-alive\r\nETag: {}\r\nAccept-Ranges: bytes\r\n",
                            self::http_date(mtime * 1000),
                            nginx_etag(mtime, body.len()),
                        );
                        ("200 OK", server, "text/html", body, extra)
                    }
                    "/hostname.html" => (
                        "200 OK",
                        server,
                        "text/html",
                        format!("{pod}\n"),
                        "Connection: keep-alive\r\nAccept-Ranges: bytes\r\n".to_owned(),
                    ),
                    _ => (
                        "404 Not Found",
                        server.clone(),
                        "text/html",
                        nginx_error(404, "Not Found", &server),
                        "Connection: keep-alive\r\n".to_owned(),
                    ),
                }
            }
            HttpApp::Nginx { version } => {
                let server = format!("nginx/{version}");
                match req.path.as_str() {
                    "/" | "/index.html" => (
                        "200 OK",
                        server,
                        "text/html",
                        NGINX_WELCOME.to_owned(),
                        "Connection: keep-alive\r\nAccept-Ranges: bytes\r\n".to_owned(),
                    ),
                    _ => (
                        "404 Not Found",
                        server.clone(),
                        "text/html",
                        nginx_error(404, "Not Found", &server),
                        "Connection: keep-alive\r\n".to_owned(),
                    ),
                }
            }
            HttpApp::EchoServer { pod, port } => {
                let mut headers: Vec<String> = req
                    .headers
                    .iter()
                    .map(|(k, v)| format!("\t{}={v}", k.to_ascii_lowercase()))
                    .collect();
                headers.sort();
                // nginx's $host: the Host header without its port.
                let host = req.header("host").unwrap_or_default();
                let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
                let body = format!(
                    "\n\nHostname: {pod}\n\nPod Information:\n\t-no pod information available-\n\nServer values:\n\tserver_version=nginx: 1.13.3 - lua: 10008\n\nRequest Information:\n\tclient_address={}\n\tmethod={}\n\treal path={}\n\tquery={}\n\trequest_version=1.1\n\trequest_scheme=http\n\trequest_uri=http://{host}:{port}{}\n\nRequest Headers:\n{}\n\nRequest Body:\n\t-no body in request-\n\n",
                    client.ip(),
                    req.method,
                    // The template prints `real path={{ngx.var.request_uri}}`: the
                    // request target as sent, query string included.
                    req.target,
                    req.query,
                    req.target,
                    headers.join("\n")
                );
                (
                    "200 OK",
                    "echoserver".to_owned(),
                    "text/plain",
                    body,
                    "Transfer-Encoding: identity\r\nConnection: keep-alive\r\n".to_owned(),
                )
            }
            HttpApp::HealthCheck { .. } | HttpApp::HttpEcho { .. } => {
                return self.go_response(req, http_date).unwrap_or_default()
            }
        };
        let mut head = format!("HTTP/1.1 {status}\r\n");
        if !server.is_empty() && server != "echoserver" {
            head.push_str(&format!("Server: {server}\r\n"));
        }
        head.push_str(&format!(
            "Date: {http_date}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        ));
        let mut out = head.into_bytes();
        if req.method != "HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        out
    }
}

impl HttpApp {
    /// The apps written in Go answer as `net/http` does: the handler's headers sorted by
    /// name, then `Date` and `Content-Length`, then a sniffed `Content-Type` when the
    /// handler set none.
    fn go_response(&self, req: &Request, http_date: &str) -> Option<Vec<u8>> {
        let (status, handler_headers, sniffed, body) = match self {
            // kube-proxy's service health check (pkg/proxy/healthcheck/service_health.go):
            // a dedented, tab-indented JSON document without a trailing newline.
            HttpApp::HealthCheck {
                namespace,
                name,
                local_endpoints,
            } => (
                if *local_endpoints > 0 {
                    "200 OK"
                } else {
                    "503 Service Unavailable"
                },
                vec![
                    ("Content-Type", "application/json".to_owned()),
                    ("X-Content-Type-Options", "nosniff".to_owned()),
                    (
                        "X-Load-Balancing-Endpoint-Weight",
                        local_endpoints.to_string(),
                    ),
                ],
                None,
                format!(
                    "{{\n\t\"service\": {{\n\t\t\"namespace\": {namespace:?},\n\t\t\"name\": {name:?}\n\t}},\n\t\"localEndpoints\": {local_endpoints},\n\t\"serviceProxyHealthy\": true\n}}"
                ),
            ),
            HttpApp::HttpEcho { text } => (
                "200 OK",
                vec![
                    ("X-App-Name", "http-echo".to_owned()),
                    ("X-App-Version", "1.0.0".to_owned()),
                ],
                Some("text/plain; charset=utf-8"),
                format!("{text}\n"),
            ),
            _ => return None,
        };
        let mut head = format!("HTTP/1.1 {status}\r\n");
        let mut handler_headers = handler_headers;
        handler_headers.sort();
        for (k, v) in handler_headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Date: {http_date}\r\nContent-Length: {}\r\n",
            body.len()
        ));
        if let Some(ct) = sniffed {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if req.method != "HEAD" {
            out.extend_from_slice(body.as_bytes());
        }
        Some(out)
    }
}

/// The mtime (Unix seconds) of myapp's `index.html` in each image: nginx derives both
/// `Last-Modified` and `ETag` from it, so one number keeps them in agreement. v1 is what a
/// real `wangyanglinux/myapp:v1` serves (Fri, 02 Mar 2018 03:39:12 GMT); the other tags'
/// times are plausible, not measured.
fn myapp_index_mtime(version: &str) -> i64 {
    match version {
        "v1" => 0x5a98_c760,
        "v2" => 1_520_175_831, // Sun, 04 Mar 2018 15:03:51 GMT
        "v3" => 1_520_176_322, // Sun, 04 Mar 2018 15:12:02 GMT
        _ => 1_520_176_837,    // Sun, 04 Mar 2018 15:20:37 GMT
    }
}

/// nginx's strong ETag for a static file: `"<mtime hex>-<size hex>"` (ngx_http_set_etag).
fn nginx_etag(mtime: i64, size: usize) -> String {
    format!("\"{mtime:x}-{size:x}\"")
}

fn nginx_error(code: u16, reason: &str, server: &str) -> String {
    format!("<html>\r\n<head><title>{code} {reason}</title></head>\r\n<body bgcolor=\"white\">\r\n<center><h1>{code} {reason}</h1></center>\r\n<hr><center>{server}</center>\r\n</body>\r\n</html>\r\n")
}

const NGINX_WELCOME: &str = "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n<style>\nhtml { color-scheme: light dark; }\nbody { width: 35em; margin: 0 auto;\nfont-family: Tahoma, Verdana, Arial, sans-serif; }\n</style>\n</head>\n<body>\n<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed and\nworking. Further configuration is required.</p>\n\n<p>For online documentation and support please refer to\n<a href=\"http://nginx.org/\">nginx.org</a>.<br/>\nCommercial support is available at\n<a href=\"http://nginx.com/\">nginx.com</a>.</p>\n\n<p><em>Thank you for using nginx.</em></p>\n</body>\n</html>\n";

/// A parsed request head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Parses a complete request head (through the blank line); `None` until complete.
    pub fn parse(buf: &[u8]) -> Option<Request> {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let text = String::from_utf8_lossy(&buf[..end]);
        let mut lines = text.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let method = first.next()?.to_owned();
        let target = first.next()?.to_owned();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (target.clone(), String::new()),
        };
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Some(Request {
            method,
            target,
            path,
            query,
            headers,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A header's value by case-insensitive name (HTTP field names are), the first if repeated.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A response as the client reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// Parses a complete response; `None` while bytes are still missing.
    pub fn parse(buf: &[u8], head_request: bool) -> Option<Response> {
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
        let text = String::from_utf8_lossy(&buf[..end]);
        let mut lines = text.split("\r\n");
        let status_line = lines.next()?.to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let len: usize = header(&headers, "content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let body_start = end + 4;
        if head_request {
            return Some(Response {
                status_line,
                headers,
                body: Vec::new(),
            });
        }
        if buf.len() < body_start + len {
            return None;
        }
        Some(Response {
            status_line,
            headers,
            body: buf[body_start..body_start + len].to_vec(),
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// HTTP dates (`Tue, 27 Oct 2020 10:05:12 GMT`) from virtual time.
pub fn http_date(ms: i64) -> String {
    apiserver::sim::to_datetime(ms)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn myapp_serves_the_lab_pages() {
        let (app, port) =
            HttpApp::for_container("wangyanglinux/myapp:v2", &[], "myapp-deploy-x").unwrap();
        assert_eq!(port, 80);
        let req = Request::parse(b"GET / HTTP/1.1\r\nHost: 10.101.48.92\r\n\r\n").unwrap();
        let resp = app.respond(
            &req,
            "10.244.1.1:40000".parse().unwrap(),
            "Tue, 27 Oct 2020 10:05:12 GMT",
        );
        let r = Response::parse(&resp, false).unwrap();
        assert_eq!(r.status_line, "HTTP/1.1 200 OK");
        assert_eq!(
            String::from_utf8_lossy(&r.body),
            "Hello MyApp | Version: v2 | <a href=\"hostname.html\">Pod Name</a>\n"
        );
        let req = Request::parse(b"GET /hostname.html HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let r = Response::parse(
            &app.respond(&req, "10.244.1.1:1".parse().unwrap(), "d"),
            false,
        )
        .unwrap();
        assert_eq!(r.body, b"myapp-deploy-x\n");
        assert!(HttpApp::for_container("busybox", &[], "p").is_none());
        assert!(HttpApp::for_container("wangyanglinux/myapp:v9", &[], "p").is_none());
    }

    #[test]
    fn myapp_etag_agrees_with_last_modified() {
        let req = Request::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let header = |tag: &str, name: &str| {
            let (app, _) =
                HttpApp::for_container(&format!("wangyanglinux/myapp:{tag}"), &[], "p").unwrap();
            let r = Response::parse(
                &app.respond(&req, "10.244.1.1:1".parse().unwrap(), "d"),
                false,
            )
            .unwrap();
            r.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        // What a real myapp:v1 serves.
        assert_eq!(
            header("v1", "Last-Modified"),
            "Fri, 02 Mar 2018 03:39:12 GMT"
        );
        assert_eq!(header("v1", "ETag"), "\"5a98c760-41\"");
        assert_eq!(
            header("v2", "Last-Modified"),
            "Sun, 04 Mar 2018 15:03:51 GMT"
        );
        assert_eq!(header("v2", "ETag"), "\"5a9c0ad7-41\"");
        for tag in ["v3", "v4"] {
            let secs = chrono::DateTime::parse_from_rfc2822(
                &header(tag, "Last-Modified").replace("GMT", "+0000"),
            )
            .unwrap()
            .timestamp();
            assert_eq!(header(tag, "ETag"), format!("\"{secs:x}-41\""));
        }
    }

    #[test]
    fn echoserver_shows_the_client_address() {
        let (app, port) =
            HttpApp::for_container("registry.k8s.io/echoserver:1.10", &[], "echo-1").unwrap();
        assert_eq!(port, 8080);
        let req = Request::parse(
            b"GET /x?a=1 HTTP/1.1\r\nHost: 10.96.1.1:8080\r\nUser-Agent: curl/8.5.0\r\n\r\n",
        )
        .unwrap();
        let r = Response::parse(
            &app.respond(&req, "172.18.0.3:5555".parse().unwrap(), "d"),
            false,
        )
        .unwrap();
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains("client_address=172.18.0.3\n"), "{body}");
        assert!(body.contains("query=a=1\n"), "{body}");
        assert!(body.contains("real path=/x?a=1\n"), "{body}");
        assert!(
            body.contains("request_uri=http://10.96.1.1:8080/x?a=1\n"),
            "{body}"
        );
    }
}
