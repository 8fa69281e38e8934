//! Bearer tokens: only their SHA-256 is kept (config and memory), each with a scope.
//!
//! Rules: with no token configured, the API is open (allowed only on loopback, see
//! [`crate::HttpConfig::check`]); with any, every route but `/healthz`, `/readyz` and the
//! dashboard's static files needs `Authorization: Bearer <token>` (or `?access_token=` for
//! the event stream, which browsers open without headers). A `read` token may use GET only.
//! Tokens are never logged: only the matching token's name is.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// GET requests only.
    Read,
    /// Everything.
    Full,
}

/// A configured token: a name for logs and the SHA-256 of the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    /// Shown in logs instead of the token.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// What it may do.
    pub scope: Scope,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("name", &self.name)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl Token {
    /// A token from its secret (hashed at once; the secret is not kept).
    pub fn from_secret(name: impl Into<String>, secret: &str, scope: Scope) -> Self {
        Self {
            name: name.into(),
            sha256: sha256(secret.as_bytes()),
            scope,
        }
    }

    /// A token from the hex SHA-256 the config holds (`printf %s TOKEN | sha256sum`).
    pub fn from_hex(name: impl Into<String>, hex: &str, scope: Scope) -> Option<Self> {
        let hex = hex.trim();
        if hex.len() != 64 {
            return None;
        }
        let mut sha = [0u8; 32];
        for (i, byte) in sha.iter_mut().enumerate() {
            *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self {
            name: name.into(),
            sha256: sha,
            scope,
        })
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The middleware: lets a request through, or answers 401/403.
pub(crate) async fn require(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let tokens = &state.config().tokens;
    if tokens.is_empty() || is_public(request.uri().path()) {
        return next.run(request).await;
    }
    let presented = bearer(&request).or_else(|| query_token(&request));
    let Some(presented) = presented else {
        return unauthorized("this endpoint needs `Authorization: Bearer <token>`");
    };
    let digest = sha256(presented.as_bytes());
    let Some(token) = tokens.iter().find(|t| t.sha256 == digest) else {
        return unauthorized("the token is not one of the configured tokens");
    };
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    if token.scope == Scope::Read && !reading {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} is read-only; this needs a full-scope token",
                token.name
            ),
        )
        .into_response();
    }
    tracing::debug!(token = %token.name, path = %request.uri().path(), "authorized");
    next.run(request).await
}

fn unauthorized(message: &str) -> Response {
    let mut response =
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Routes anyone may use: orchestrators' probes and the dashboard's static files (which hold
/// no data; the page asks for a token when the API answers 401).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/" | "/dashboard.js" | "/dashboard.css"
    )
}

fn bearer(request: &Request) -> Option<String> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn query_token(request: &Request) -> Option<String> {
    request.uri().query()?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "access_token").then(|| percent_decode(value))
    })
}

/// Decodes `%XX` and `+` in a query value.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_from_its_hex_hash_matches_the_same_token_from_its_secret() {
        let secret = "s3cret";
        let from_secret = Token::from_secret("n8n", secret, Scope::Full);
        let from_hex = Token::from_hex("n8n", &hex(&sha256(secret.as_bytes())), Scope::Full);
        assert_eq!(Some(from_secret), from_hex);
        assert_eq!(Token::from_hex("x", "zz", Scope::Read), None);
    }

    #[test]
    fn percent_decoding_reads_escapes_and_plus() {
        assert_eq!(percent_decode("a%2Bb+c%"), "a+b c%");
    }

    #[test]
    fn debug_output_never_shows_the_hash() {
        let shown = format!("{:?}", Token::from_secret("n8n", "s3cret", Scope::Read));
        assert!(!shown.contains("sha256"), "{shown}");
    }
}
