//! networking/v1 Ingress spec validation, as kube-apiserver's `ValidateIngressSpec` does it
//! (pkg/apis/networking/validation), with apimachinery's messages: hosts (no IP, DNS-1123
//! or single-label wildcard), path types and paths, and service backends. Without it a
//! student's typo (`pathType: prefix`, `path: foo`, `host: "*"`) would be stored and then
//! silently route nothing.

use serde_json::Value;

use crate::error::{quoted, FieldError};
use crate::json::At;
use crate::validation::{is_dns1123_subdomain, name_errors, NameRule};

const PATH_TYPES: &[&str] = &["Exact", "ImplementationSpecific", "Prefix"];
const INVALID_PATH_SEQUENCES: &[&str] = &["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: &[&str] = &["/..", "/."];
const WILDCARD_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

fn str_of(v: Option<&Value>) -> &str {
    v.and_then(Value::as_str).unwrap_or_default()
}

/// `ValidateIngressSpec` for `obj.spec` (create and update alike; TLS secrets and the
/// relaxed-name options of updates are not modelled).
pub fn validate_ingress_spec(obj: &Value, errs: &mut Vec<FieldError>) {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let rules = spec.get("rules").and_then(Value::as_array);
    let default_backend = spec.get("defaultBackend").filter(|b| !b.is_null());
    if rules.is_none_or(Vec::is_empty) && default_backend.is_none() {
        // Go prints the rules slice with %#v.
        let value = if rules.is_some() {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        errs.push(FieldError::invalid(
            "spec",
            value,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        validate_backend(b, "spec.defaultBackend", errs);
    }
    for (i, rule) in rules.into_iter().flatten().enumerate() {
        let at = format!("spec.rules[{i}]");
        let host = str_of(rule.get("host"));
        if !host.is_empty() {
            validate_host(host, &format!("{at}.host"), errs);
        }
        let Some(http) = rule.get("http").filter(|h| !h.is_null()) else {
            continue;
        };
        let paths = http.get("paths").and_then(Value::as_array);
        if paths.is_none_or(Vec::is_empty) {
            errs.push(FieldError::required(format!("{at}.http.paths"), ""));
        }
        for (j, p) in paths.into_iter().flatten().enumerate() {
            validate_path(p, &format!("{at}.http.paths[{j}]"), errs);
        }
    }
    if let Some(class) = spec.at("/ingressClassName").and_then(Value::as_str) {
        errs.extend(name_errors(
            "spec.ingressClassName",
            class,
            NameRule::Dns1123Subdomain,
        ));
    }
}

fn validate_host(host: &str, field: &str, errs: &mut Vec<FieldError>) {
    if host.parse::<std::net::IpAddr>().is_ok() {
        errs.push(FieldError::invalid(
            field,
            quoted(host),
            "must be a DNS name, not an IP address",
        ));
    }
    if host.contains('*') {
        let ok = host.len() <= 253
            && host
                .strip_prefix("*.")
                .is_some_and(|rest| !rest.contains('*') && is_dns1123_subdomain(rest));
        if host.len() > 253 {
            errs.push(FieldError::invalid(
                field,
                quoted(host),
                "must be no more than 253 characters",
            ));
        }
        if !ok {
            errs.push(FieldError::invalid(field, quoted(host), WILDCARD_MSG));
        }
    } else {
        errs.extend(name_errors(field, host, NameRule::Dns1123Subdomain));
    }
}

fn validate_path(p: &Value, field: &str, errs: &mut Vec<FieldError>) {
    let Some(ty) = p.get("pathType").and_then(Value::as_str) else {
        errs.push(FieldError::required(
            format!("{field}.pathType"),
            "pathType must be specified",
        ));
        return;
    };
    let path = str_of(p.get("path"));
    let pf = format!("{field}.path");
    match ty {
        "Exact" | "Prefix" => {
            if !path.starts_with('/') {
                errs.push(FieldError::invalid(
                    &pf,
                    quoted(path),
                    "must be an absolute path",
                ));
            }
            for seq in INVALID_PATH_SEQUENCES.iter().filter(|s| path.contains(**s)) {
                errs.push(FieldError::invalid(
                    &pf,
                    quoted(path),
                    format!("must not contain '{seq}'"),
                ));
            }
            for suf in INVALID_PATH_SUFFIXES.iter().filter(|s| path.ends_with(**s)) {
                errs.push(FieldError::invalid(
                    &pf,
                    quoted(path),
                    format!("cannot end with '{suf}'"),
                ));
            }
        }
        "ImplementationSpecific" => {
            if !path.is_empty() && !path.starts_with('/') {
                errs.push(FieldError::invalid(
                    &pf,
                    quoted(path),
                    "must be an absolute path",
                ));
            }
        }
        other => {
            errs.push(FieldError::not_supported(
                format!("{field}.pathType"),
                quoted(other),
                PATH_TYPES,
            ));
        }
    }
    validate_backend(
        p.get("backend").unwrap_or(&Value::Null),
        &format!("{field}.backend"),
        errs,
    );
}

fn validate_backend(b: &Value, field: &str, errs: &mut Vec<FieldError>) {
    let resource = b.get("resource").filter(|r| !r.is_null());
    let service = b.get("service").filter(|s| !s.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            field,
            "\"\"",
            "cannot set both resource and service backends",
        )),
        (Some(_), None) => {}
        (None, Some(svc)) => {
            let name = str_of(svc.get("name"));
            if name.is_empty() {
                errs.push(FieldError::required(format!("{field}.service.name"), ""));
            } else {
                // ValidateServiceName: a Service's name is a DNS-1035 label.
                errs.extend(name_errors(
                    &format!("{field}.service.name"),
                    name,
                    NameRule::Dns1035Label,
                ));
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let port_name = str_of(port.get("name"));
            let number = port.get("number").and_then(Value::as_i64).unwrap_or(0);
            match (port_name.is_empty(), number) {
                (false, n) if n != 0 => errs.push(FieldError::invalid(
                    field,
                    "\"\"",
                    "cannot set both port name & port number",
                )),
                (false, _) => {
                    for msg in port_name_errors(port_name) {
                        errs.push(FieldError::invalid(
                            format!("{field}.service.port.name"),
                            quoted(port_name),
                            msg,
                        ));
                    }
                }
                (true, 0) => errs.push(FieldError::required(
                    field,
                    "port name or number is required",
                )),
                (true, n) if !(1..=65535).contains(&n) => errs.push(FieldError::invalid(
                    format!("{field}.service.port.number"),
                    n.to_string(),
                    "must be between 1 and 65535, inclusive",
                )),
                (true, _) => {}
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            field,
            "\"\"",
            "resource or service backend is required",
        )),
    }
}

/// apimachinery's `IsValidPortName` (an IANA service name).
fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

    fn errors(spec: Value) -> Vec<String> {
        let mut errs = Vec::new();
        validate_ingress_spec(&json!({ "spec": spec }), &mut errs);
        errs.iter().map(FieldError::rendered).collect()
    }

    fn rule(host: &str, path: Value) -> Value {
        json!({"rules": [{"host": host, "http": {"paths": [path]}}]})
    }

    fn path(p: &str, ty: &str) -> Value {
        json!({"path": p, "pathType": ty, "backend": {"service": {"name": "svc-1", "port": {"number": 80}}}})
    }

    #[test]
    fn a_valid_lab_ingress_passes() {
        assert!(errors(rule("www1.atguigu.com", path("/", "Prefix"))).is_empty());
        assert!(errors(rule("*.atguigu.com", path("/a/b", "Exact"))).is_empty());
        assert!(errors(rule("", path("", "ImplementationSpecific"))).is_empty());
        let backend_only =
            json!({"defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}}});
        assert!(errors(backend_only).is_empty());
    }

    #[test]
    fn hosts_paths_and_backends_get_kube_apiservers_messages() {
        assert_eq!(
            errors(rule("*", path("foo", "Weird"))),
            vec![
                format!("spec.rules[0].host: Invalid value: \"*\": {WILDCARD_MSG}"),
                "spec.rules[0].http.paths[0].pathType: Unsupported value: \"Weird\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\"".to_owned(),
            ]
        );
        assert_eq!(
            errors(rule("10.0.0.1", path("/a//b/.", "Prefix"))),
            vec![
                "spec.rules[0].host: Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address".to_owned(),
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/.\": must not contain '//'".to_owned(),
                "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b/.\": cannot end with '/.'".to_owned(),
            ]
        );
        assert_eq!(
            errors(rule("a.example.com", path("relative", "Exact"))),
            vec!["spec.rules[0].http.paths[0].path: Invalid value: \"relative\": must be an absolute path"]
        );
        let no_type = json!({"rules": [{"http": {"paths": [{"path": "/", "backend": {}}]}}]});
        assert_eq!(
            errors(no_type),
            vec![
                "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"
            ]
        );
        let bad_backend = json!({"rules": [{"http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "Svc", "port": {}}}},
            {"path": "/x", "pathType": "Prefix", "backend": {"service": {"name": "svc", "port": {"number": 70000}}}},
        ]}}]});
        assert_eq!(
            errors(bad_backend),
            vec![
                format!("spec.rules[0].http.paths[0].backend.service.name: Invalid value: \"Svc\": {DNS1035_MSG}"),
                "spec.rules[0].http.paths[0].backend: Required value: port name or number is required".to_owned(),
                "spec.rules[0].http.paths[1].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535, inclusive".to_owned(),
            ]
        );
        assert_eq!(
            errors(json!({})),
            vec!["spec: Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified"]
        );
    }
}
