//! API errors as Kubernetes `Status` objects (apimachinery `pkg/api/errors`).

use serde::Serialize;

use crate::resources::Resource;
use crate::store::StoreError;

/// A failure the API reports to its client; renders as a `Status` with the real reason,
/// code and message shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Box<StatusDetails>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// One field error, as `field.Error` renders: `spec.clusterIP: Invalid value: "x": why`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    /// `FieldValueInvalid`, `FieldValueRequired`, `FieldValueNotSupported`, `FieldValueDuplicate`.
    pub reason: &'static str,
    pub detail: String,
}

impl FieldError {
    /// `Invalid value: <value>: <detail>`; `value` is already rendered as Go's `%#v` would.
    pub fn invalid(
        field: impl Into<String>,
        value: impl Into<String>,
        detail: impl AsRef<str>,
    ) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueInvalid",
            detail: format!("Invalid value: {}: {}", value.into(), detail.as_ref()),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        let d = detail.as_ref();
        FieldError {
            field: field.into(),
            reason: "FieldValueRequired",
            detail: if d.is_empty() {
                "Required value".to_owned()
            } else {
                format!("Required value: {d}")
            },
        }
    }

    pub fn not_supported(
        field: impl Into<String>,
        value: impl Into<String>,
        valid: &[&str],
    ) -> Self {
        let quoted: Vec<String> = valid.iter().map(|v| format!("\"{v}\"")).collect();
        FieldError {
            field: field.into(),
            reason: "FieldValueNotSupported",
            detail: format!(
                "Unsupported value: {}: supported values: {}",
                value.into(),
                quoted.join(", ")
            ),
        }
    }

    pub fn forbidden(field: impl Into<String>, detail: impl AsRef<str>) -> Self {
        FieldError {
            field: field.into(),
            reason: "FieldValueForbidden",
            detail: format!("Forbidden: {}", detail.as_ref()),
        }
    }

    pub fn rendered(&self) -> String {
        format!("{}: {}", self.field, self.detail)
    }
}

/// Go's `%q` for a string value in field errors.
pub fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        ApiError {
            code,
            reason,
            message,
            details: None,
        }
    }

    fn with_details(mut self, res: Option<&Resource>, name: &str) -> Self {
        self.details = Some(Box::new(StatusDetails {
            name: (!name.is_empty()).then(|| name.to_owned()),
            group: res
                .filter(|r| !r.group.is_empty())
                .map(|r| r.group.to_owned()),
            kind: res.map(|r| r.plural.to_owned()),
            causes: Vec::new(),
        }));
        self
    }

    pub fn not_found(res: &Resource, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{}\" not found", res.qualified(), name),
        )
        .with_details(Some(res), name)
    }

    /// apimachinery's NewForbidden: `pods "web-" is forbidden: <why>`.
    pub fn forbidden(res: &Resource, name: &str, why: &str) -> Self {
        let message = if name.is_empty() {
            format!("{} is forbidden: {why}", res.qualified())
        } else {
            format!("{} \"{name}\" is forbidden: {why}", res.qualified())
        };
        Self::new(403, "Forbidden", message).with_details(Some(res), name)
    }

    pub fn already_exists(res: &Resource, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", res.qualified(), name),
        )
        .with_details(Some(res), name)
    }

    pub fn conflict(res: &Resource, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {}",
                res.qualified(),
                name,
                why
            ),
        )
        .with_details(Some(res), name)
    }

    /// The optimistic-concurrency conflict, worded as kube-apiserver words it.
    pub fn stale(res: &Resource, name: &str) -> Self {
        Self::conflict(
            res,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(res: &Resource, name: &str, errs: Vec<FieldError>) -> Self {
        let rendered: Vec<String> = errs.iter().map(FieldError::rendered).collect();
        let body = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let mut e = Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{}\" is invalid: {}",
                res.kind_qualified_title(),
                name,
                body
            ),
        )
        .with_details(Some(res), name);
        if let Some(d) = e.details.as_mut() {
            d.kind = Some(res.kind.to_owned());
            d.causes = errs
                .iter()
                .map(|f| StatusCause {
                    reason: f.reason.to_owned(),
                    message: f.detail.clone(),
                    field: f.field.clone(),
                })
                .collect();
        }
        e
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message.into())
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message.into())
    }

    pub fn path_not_found(path: &str) -> Self {
        let _ = path;
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
        )
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into())
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    /// Maps a store failure for one object to its API error.
    pub fn from_store(err: StoreError, res: &Resource, name: &str) -> Self {
        match err {
            StoreError::AlreadyExists(_) => Self::already_exists(res, name),
            StoreError::NotFound(_) => Self::not_found(res, name),
            StoreError::Conflict { .. } => Self::stale(res, name),
            StoreError::Compacted { requested, oldest } => Self::expired(format!(
                "too old resource version: {requested} ({})",
                oldest - 1
            )),
            StoreError::Unavailable { .. } => Self::unavailable(err.to_string()),
            StoreError::Internal(m) => Self::internal(m),
        }
    }

    /// The `Status` object, fields in kube-apiserver's order.
    pub fn to_status(&self) -> serde_json::Value {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Status<'a> {
            kind: &'static str,
            api_version: &'static str,
            metadata: serde_json::Map<String, serde_json::Value>,
            status: &'static str,
            message: &'a str,
            reason: &'static str,
            #[serde(skip_serializing_if = "Option::is_none")]
            details: Option<&'a StatusDetails>,
            code: u16,
        }
        serde_json::to_value(Status {
            kind: "Status",
            api_version: "v1",
            metadata: serde_json::Map::new(),
            status: "Failure",
            message: &self.message,
            reason: self.reason,
            details: self.details.as_deref(),
            code: self.code,
        })
        .unwrap_or(serde_json::Value::Null)
    }
}

impl Resource {
    /// `Deployment.apps`, `Service`: how an Invalid error names the kind.
    pub fn kind_qualified_title(&self) -> String {
        if self.group.is_empty() {
            self.kind.to_owned()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}
