//! Reading request bodies and query strings into typed values, with errors that name the
//! field (promise 5): `unknown field "tx"`, `messages[2].to: expected a string`.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// Parses a JSON body; 400 naming the field on malformed JSON, a wrong type, a missing or an
/// unknown field; 415 when the content type is given and is not JSON.
pub(crate) fn parse<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if let Some(kind) = headers.get(header::CONTENT_TYPE) {
        let kind = kind.to_str().unwrap_or_default().to_ascii_lowercase();
        if !kind.starts_with("application/json") && !kind.contains("+json") {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send JSON (Content-Type: application/json), not {kind:?}"),
            ));
        }
    }
    if body.is_empty() {
        return Err(ApiError::bad_request(
            "the request body is empty: send a JSON object",
        ));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let message = inner.to_string();
        let field = named_field(&message)
            .map(|name| join(&path, &name))
            .or_else(|| (path != "." && path != "?").then(|| path.clone()));
        let mut e = ApiError::bad_request(match &field {
            Some(field) => format!("{field}: {message}"),
            None => format!("the body is not valid JSON for this request: {message}"),
        });
        e.field = field;
        e
    })
}

/// The field serde names in "missing field `x`" (the path then ends at its parent; for an
/// unknown field the path already ends with the field).
fn named_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

fn join(path: &str, name: &str) -> String {
    if path == "." || path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        to: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Batch {
        messages: Vec<Item>,
    }

    fn field_of(body: &str) -> Option<String> {
        parse::<Batch>(&HeaderMap::new(), &Bytes::from(body.to_owned()))
            .err()
            .and_then(|e| e.field)
    }

    #[test]
    fn errors_name_the_field_with_its_path() {
        assert_eq!(
            field_of(r#"{"messages":[{"to":"1"},{"tx":"2"}]}"#).as_deref(),
            Some("messages[1].tx")
        );
        assert_eq!(
            field_of(r#"{"messages":[{"to":5}]}"#).as_deref(),
            Some("messages[0].to")
        );
        assert_eq!(
            field_of(r#"{"messages":[{}]}"#).as_deref(),
            Some("messages[0].to")
        );
        assert_eq!(field_of(r#"{}"#).as_deref(), Some("messages"));
        assert_eq!(field_of("{"), None);
    }
}
