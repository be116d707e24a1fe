//! Who may call the admin API, checked before any route runs:
//!
//! 1. A request with an `Origin` header comes from a browser page; unless
//!    that origin is listed in `admin_origins` it is refused (403). By
//!    default none is, so a page the operator's browser visits cannot
//!    drive the API (kick, reload) through the browser.
//! 2. With `admin_token_file`, every request (`/metrics` included:
//!    Prometheus sends bearer tokens) must carry
//!    `Authorization: Bearer TOKEN`; compared in constant time (401).
//! 3. A `POST` must say `Content-Type: application/json` (415): a browser
//!    sends that type cross-site only after a CORS preflight, which we
//!    never answer, so a form or `fetch` from another site cannot make a
//!    "simple" request that reaches a handler. A `DELETE` needs no type:
//!    browsers never send one cross-site without that preflight.
//!
//! The settings are the running configuration's, so a reload changes them
//! for the next request.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::api::error;
use crate::config::AdminToken;

/// Runs [`admit`] on every request; a refusal is answered with
/// `{"error": "..."}` and never reaches a route.
pub(super) async fn check(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.reloader.running();
    match admit(
        &config.admin_origins,
        config.admin_token.as_ref(),
        request.method(),
        request.headers(),
    ) {
        Ok(()) => next.run(request).await,
        Err(Refusal::Unauthorized(message)) => {
            let mut response = error(StatusCode::UNAUTHORIZED, message.into());
            (response.headers_mut())
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Err(Refusal::Forbidden(message)) => error(StatusCode::FORBIDDEN, message),
        Err(Refusal::UnsupportedType(message)) => {
            error(StatusCode::UNSUPPORTED_MEDIA_TYPE, message.into())
        }
    }
    .into_response()
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Refusal {
    /// 403: from a browser page of an origin not allowed.
    Forbidden(String),
    /// 401: no token, or the wrong one.
    Unauthorized(&'static str),
    /// 415: a POST that is not JSON.
    UnsupportedType(&'static str),
}

/// Decides whether a request may reach the API (see the module's rules,
/// in their order).
pub(super) fn admit(
    origins: &[String],
    token: Option<&AdminToken>,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|origin| {
            (origins.iter()).any(|allowed| allowed.eq_ignore_ascii_case(origin))
        });
        if !allowed {
            let shown = String::from_utf8_lossy(origin.as_bytes());
            let shown = crate::session::Quoted(&shown);
            return Err(Refusal::Forbidden(format!(
                "requests from browser pages of origin {shown} are refused; list the origin in \
                 admin_origins to allow it"
            )));
        }
    }
    if let Some(token) = token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| bearer(value.as_bytes()));
        match presented {
            None => {
                return Err(Refusal::Unauthorized(
                    "this server requires `Authorization: Bearer TOKEN` (admin_token_file)",
                ));
            }
            Some(presented) if !token.matches(presented) => {
                return Err(Refusal::Unauthorized("wrong bearer token"));
            }
            Some(_) => {}
        }
    }
    if method == Method::POST && !is_json(headers) {
        return Err(Refusal::UnsupportedType(
            "a POST must send `Content-Type: application/json`",
        ));
    }
    Ok(())
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is
/// case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

/// Whether the request's media type is `application/json` (parameters
/// such as `charset` allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_support::TempFile;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.parse().unwrap(), HeaderValue::from_static(value)))
            .collect()
    }

    const JSON: (&str, &str) = ("content-type", "application/json");

    #[test]
    fn requests_without_an_origin_pass_and_foreign_origins_are_refused() {
        let none: &[String] = &[];
        assert_eq!(admit(none, None, &Method::GET, &headers(&[])), Ok(()));
        assert_eq!(admit(none, None, &Method::POST, &headers(&[JSON])), Ok(()));
        let evil = headers(&[("origin", "https://evil.example"), JSON]);
        let Err(Refusal::Forbidden(message)) = admit(none, None, &Method::POST, &evil) else {
            panic!("refused");
        };
        assert!(message.contains("https://evil.example"), "{message}");
        let dash = ["https://dash.example".to_owned()];
        assert!(matches!(
            admit(
                &dash,
                None,
                &Method::GET,
                &headers(&[("origin", "https://evil.example")])
            ),
            Err(Refusal::Forbidden(_))
        ));
        let ok = headers(&[("origin", "https://DASH.example"), JSON]);
        assert_eq!(admit(&dash, None, &Method::POST, &ok), Ok(()));
        // Sandboxed pages and files send `null`: a browser page all the same.
        let null = headers(&[("origin", "null")]);
        assert!(admit(&dash, None, &Method::GET, &null).is_err());
    }

    #[test]
    fn a_post_must_be_json() {
        let refused = [
            headers(&[]),
            headers(&[("content-type", "text/plain")]),
            headers(&[("content-type", "application/x-www-form-urlencoded")]),
            headers(&[("content-type", "multipart/form-data; boundary=x")]),
        ];
        for h in &refused {
            assert!(
                matches!(
                    admit(&[], None, &Method::POST, h),
                    Err(Refusal::UnsupportedType(_))
                ),
                "{h:?}"
            );
        }
        let charset = headers(&[("content-type", "Application/JSON; charset=utf-8")]);
        assert_eq!(admit(&[], None, &Method::POST, &charset), Ok(()));
        assert_eq!(admit(&[], None, &Method::GET, &headers(&[])), Ok(()));
    }

    #[test]
    fn with_a_token_every_request_needs_it() {
        let file = TempFile::new("s3cret-s3cret-s3cret\n");
        let token = AdminToken::read(file.path()).unwrap();
        let token = Some(&token);
        let get = |pairs| admit(&[], token, &Method::GET, &headers(pairs));
        assert!(matches!(get(&[]), Err(Refusal::Unauthorized(_))));
        assert!(matches!(
            get(&[("authorization", "Bearer wrong-wrong-wrong")]),
            Err(Refusal::Unauthorized("wrong bearer token"))
        ));
        assert!(matches!(
            get(&[("authorization", "Basic czNjcmV0")]),
            Err(Refusal::Unauthorized(_))
        ));
        assert_eq!(
            get(&[("authorization", "Bearer s3cret-s3cret-s3cret")]),
            Ok(())
        );
        assert_eq!(
            get(&[("authorization", "bearer  s3cret-s3cret-s3cret ")]),
            Ok(())
        );
        // The token does not excuse a foreign origin or a non-JSON POST.
        let evil = [
            ("authorization", "Bearer s3cret-s3cret-s3cret"),
            ("origin", "https://evil.example"),
        ];
        assert!(matches!(get(&evil), Err(Refusal::Forbidden(_))));
        let form = headers(&[("authorization", "Bearer s3cret-s3cret-s3cret")]);
        assert!(matches!(
            admit(&[], token, &Method::POST, &form),
            Err(Refusal::UnsupportedType(_))
        ));
    }
}
