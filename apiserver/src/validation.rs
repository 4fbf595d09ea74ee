//! Name and field validation with apimachinery's exact messages.

use serde_json::Value;

use crate::error::{quoted, FieldError};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

/// Which rule a name must follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Dns1123Label,
    Dns1123Subdomain,
    Dns1035Label,
}

fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && is_label(s)
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_label)
}

pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// Validates `value` under `rule`, returning apimachinery's errors for `field`.
pub fn name_errors(field: &str, value: &str, rule: NameRule) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let (max, ok, msg) = match rule {
        NameRule::Dns1123Label => (63, is_label(value), DNS1123_LABEL_MSG),
        NameRule::Dns1123Subdomain => (253, value.split('.').all(is_label), DNS1123_SUBDOMAIN_MSG),
        NameRule::Dns1035Label => (
            63,
            is_label(value) && value.as_bytes().first().is_some_and(u8::is_ascii_lowercase),
            DNS1035_LABEL_MSG,
        ),
    };
    if value.len() > max {
        errs.push(FieldError::invalid(
            field,
            quoted(value),
            format!("must be no more than {max} characters"),
        ));
    }
    if !ok {
        errs.push(FieldError::invalid(field, quoted(value), msg));
    }
    errs
}

/// Go's `%#v` of a `map[string]string`, as validation messages print label maps.
pub fn go_string_map(m: Option<&serde_json::Map<String, Value>>) -> String {
    let inner: Vec<String> = m
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{}:{}", quoted(k), quoted(v.as_str().unwrap_or_default())))
                .collect()
        })
        .unwrap_or_default();
    if m.is_none() {
        return "map[string]string(nil)".to_owned();
    }
    format!("map[string]string{{{}}}", inner.join(", "))
}

pub fn validate_port(field: &str, port: &Value) -> Option<FieldError> {
    match port.as_i64() {
        Some(p) if (1..=65535).contains(&p) => None,
        Some(p) => Some(FieldError::invalid(
            field,
            p.to_string(),
            "must be between 1 and 65535, inclusive",
        )),
        None => Some(FieldError::required(field, "")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_dns1123_subdomain("myapp-deploy"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("My_App"));
        assert!(is_dns1035_label("myapp"));
        assert!(!is_dns1035_label("1myapp"));
        let e = name_errors("metadata.name", "My_App", NameRule::Dns1123Subdomain);
        assert_eq!(
            e[0].rendered(),
            "metadata.name: Invalid value: \"My_App\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
    }

    #[test]
    fn go_map_format() {
        let v = serde_json::json!({"release": "stabel", "app": "myapp"});
        assert_eq!(
            go_string_map(v.as_object()),
            "map[string]string{\"app\":\"myapp\", \"release\":\"stabel\"}"
        );
    }
}
