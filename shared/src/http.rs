//! HTTP edge shared by the web and agent APIs: the one mapping from [`crate::Error`] to a
//! status, the JSON error shape, extractors that turn rejections into that shape, and the
//! layers every API router gets (body limit, error shaping, request tracing).
//!
//! Every error response has the body
//!
//! ```json
//! {"error": {"code": "bad_request", "message": "text: text must not be empty"}}
//! ```
//!
//! with `code` one of `bad_request`, `unauthorized`, `forbidden`, `not_found`,
//! `method_not_allowed`, `conflict`, `payload_too_large`, `unsupported_media_type`,
//! `internal`. 4xx messages are safe to show; 5xx bodies are opaque and the cause chain is
//! logged instead.

use crate::Error;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, MatchedPath, OptionalFromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

/// An error on its way to an HTTP client: a status and a message that is safe to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// `Retry-After`, in seconds.
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`; for 5xx statuses the message is replaced by an opaque one.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        let message = if status.is_server_error() {
            "internal error".to_owned()
        } else {
            message.into()
        };
        Self {
            status,
            message,
            retry_after: None,
        }
    }

    /// 429: too many attempts; try again after `retry_after` (at least a second).
    pub fn too_many_requests(reason: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, reason)
        }
    }

    /// 400: the request is malformed; `reason` says how.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 401: missing, expired or forged credentials.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, reason)
    }

    /// 403: authenticated, but not allowed to do this.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, reason)
    }

    /// 404: no such thing (or no such route).
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// 409: the state of the thing does not allow it (someone else owns it, wrong state).
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, reason)
    }

    /// 413: the body is larger than the configured limit.
    pub fn payload_too_large() -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "request body is too large")
    }

    /// 500 with an opaque message; log the cause before returning this.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The machine-readable code in the body, derived from the status.
    pub fn code(&self) -> &'static str {
        match self.status {
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::CONFLICT => "conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::TOO_MANY_REQUESTS => "too_many_requests",
            s if s.is_server_error() => "internal",
            _ => "bad_request",
        }
    }

    /// A generic error for a status produced outside our handlers (router, layers).
    fn for_status(status: StatusCode) -> Self {
        let message = match status {
            StatusCode::NOT_FOUND => "no such route",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route",
            StatusCode::PAYLOAD_TOO_LARGE => "request body is too large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected Content-Type: application/json",
            StatusCode::UNAUTHORIZED => "missing or invalid credentials",
            _ => status.canonical_reason().unwrap_or("request rejected"),
        };
        Self::new(status, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": { "code": self.code(), "message": self.message }
        });
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The one place where a [`crate::Error`] becomes a status.
impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match error {
            Error::Invalid(reason) => Self::bad_request(reason),
            Error::Unauthorized(reason) => Self::unauthorized(reason),
            Error::NotFound(reason) => Self::not_found(reason),
            Error::Conflict(reason) => Self::conflict(reason),
            error @ (Error::Backend { .. }
            | Error::Config(_)
            | Error::Corrupt(_)
            | Error::Paused(_)) => {
                tracing::error!(error = %crate::cause_chain(&error), "request failed");
                Self::internal()
            }
        }
    }
}

/// A JSON body extractor whose rejections are [`ApiError`]s: 415 without a JSON content
/// type, 400 with the parser's reason for malformed or mistyped JSON, 413 over the limit.
///
/// `Option<Json<T>>` accepts an absent (empty) body as `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(unsupported_media_type());
        }
        parse_json(&read_body(req, state).await?).map(Json)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> OptionalFromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        let json_type = is_json(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        if !json_type {
            return Err(unsupported_media_type());
        }
        parse_json(&bytes).map(|value| Some(Json(value)))
    }
}

async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large()
        } else {
            ApiError::bad_request("could not read the request body")
        }
    })
}

/// Parses a body that must be a JSON object (serde would also accept an array for a
/// struct, which no client means to send).
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = serde_json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "invalid request body",
            _ => "malformed JSON",
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })?;
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(value),
        _ => Err(ApiError::bad_request("request body must be a JSON object")),
    }
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "expected Content-Type: application/json",
    )
}

/// `application/json`, with or without parameters, or any `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// A query-string extractor whose rejections are 400 [`ApiError`]s with the reason.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        axum::extract::Query::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| ApiError::bad_request(rejection.body_text()))
    }
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> crate::Result<&str> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| Error::Unauthorized("missing bearer token".into()))?;
    let value = value
        .to_str()
        .map_err(|_| Error::Unauthorized("malformed authorization header".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Error::Unauthorized(
            "expected Authorization: Bearer <token>".into(),
        )),
    }
}

pub use crate::domain::MAX_TEXT_CHARS;

/// A message text as accepted at the edge: cleaned ([`crate::domain::clean_text`]: no
/// control characters or escape sequences, LF line ends, trimmed), non-empty, at most
/// [`MAX_TEXT_CHARS`] characters.
pub fn message_text(raw: &str) -> crate::Result<String> {
    let text = crate::domain::clean_text(raw);
    let text = text.as_str();
    if text.is_empty() {
        return Err(Error::Invalid("text must not be empty".into()));
    }
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Error::Invalid(format!(
            "text is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed"
        )));
    }
    Ok(text.to_owned())
}

/// Adds what every kefu API router needs: the body limit (413 in our shape, also when the
/// handler never reads the body), JSON error bodies for responses produced by the router
/// itself (unknown route 404, wrong method 405) and by layers, and one tracing span per
/// request with method, route template and status (never headers, bodies or query values).
///
/// No `fallback` is set, so routers finished with this can still be merged; the default
/// 404 fallback gets the JSON shape from the layer.
pub fn api_layers(router: Router, max_body_bytes: usize) -> Router {
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(RequestBodyLimitLayer::new(max_body_bytes))
        .layer(axum::middleware::map_response(shape_error))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_request(())
                .on_response(log_response),
        )
}

/// Rewrites error responses that do not carry our JSON shape (router 404/405, layer 413,
/// extractor rejections) into it, keeping headers such as `Allow`.
async fn shape_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (parts, _body) = response.into_parts();
    let mut shaped = ApiError::for_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.headers_mut().insert(name.clone(), value.clone());
        }
    }
    shaped
}

fn request_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("http", method = %req.method(), route = %route)
}

fn log_response(response: &Response, latency: Duration, _span: &tracing::Span) {
    let status = response.status().as_u16();
    let latency_ms = latency.as_millis() as u64;
    if response.status().is_server_error() {
        tracing::error!(status, latency_ms, "response");
    } else {
        tracing::info!(status, latency_ms, "response");
    }
}

/// The methods the APIs use, for CORS.
pub(crate) const API_METHODS: [Method; 2] = [Method::GET, Method::POST];

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Echo {
        n: u32,
    }

    fn app() -> Router {
        let router = Router::new().route(
            "/echo",
            post(|Json(echo): Json<Echo>| async move { echo.n.to_string() }),
        );
        api_layers(router, 64)
    }

    async fn call(method: &str, uri: &str, content_type: Option<&str>, body: &str) -> Response {
        let mut builder = http::Request::builder().method(method).uri(uri);
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let req = builder
            .body(axum::body::Body::from(body.to_owned()))
            .unwrap();
        app().oneshot(req).await.unwrap()
    }

    #[test]
    fn given_each_error_kind_when_mapped_then_status_and_safe_message() {
        let cases = [
            (Error::Invalid("bad".into()), 400, "bad_request", "bad"),
            (Error::Unauthorized("no".into()), 401, "unauthorized", "no"),
            (Error::NotFound("gone".into()), 404, "not_found", "gone"),
            (Error::Conflict("taken".into()), 409, "conflict", "taken"),
            (
                Error::backend("writing secret-table", std::io::Error::other("disk")),
                500,
                "internal",
                "internal error",
            ),
            (
                Error::Corrupt("row 7".into()),
                500,
                "internal",
                "internal error",
            ),
        ];
        for (error, status, code, message) in cases {
            let api = ApiError::from(error);
            assert_eq!(api.status().as_u16(), status);
            assert_eq!(api.code(), code);
            assert_eq!(api.message(), message);
        }
    }

    #[test]
    fn given_a_backend_error_when_chained_then_every_cause_is_listed() {
        let error = Error::backend("saving conversation", std::io::Error::other("timeout"));
        assert_eq!(crate::cause_chain(&error), "saving conversation: timeout");
    }

    #[tokio::test]
    async fn given_valid_json_when_extracted_then_handler_runs() {
        let response = call("POST", "/echo", Some("application/json"), r#"{"n":7}"#).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn given_malformed_json_when_extracted_then_400_with_reason() {
        let response = call("POST", "/echo", Some("application/json"), "{\"n\":").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert_eq!(body["error"]["code"], "bad_request");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("malformed JSON")
        );
    }

    #[tokio::test]
    async fn given_unknown_field_when_extracted_then_400_names_it() {
        let response = call(
            "POST",
            "/echo",
            Some("application/json"),
            r#"{"n":1,"x":2}"#,
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown field `x`")
        );
    }

    #[tokio::test]
    async fn given_a_json_array_for_an_object_when_extracted_then_400() {
        let response = call("POST", "/echo", Some("application/json"), "[7]").await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let body = body_json(response).await;
        assert_eq!(
            body["error"]["message"],
            "request body must be a JSON object"
        );
    }

    #[tokio::test]
    async fn given_wrong_content_type_when_extracted_then_415() {
        let response = call("POST", "/echo", Some("text/plain"), r#"{"n":1}"#).await;
        assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            body_json(response).await["error"]["code"],
            "unsupported_media_type"
        );
    }

    #[tokio::test]
    async fn given_oversize_body_when_posted_then_413_in_our_shape() {
        let big = format!(r#"{{"n":1,"pad":"{}"}}"#, "x".repeat(100));
        let response = call("POST", "/echo", Some("application/json"), &big).await;
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            body_json(response).await["error"]["code"],
            "payload_too_large"
        );
    }

    /// A body without a `Content-Length` (as with `Transfer-Encoding: chunked`): the
    /// mapped body hides its size.
    fn chunked(size: usize) -> axum::body::Body {
        axum::body::Body::new(
            http_body_util::Full::new(Bytes::from(vec![b' '; size])).map_frame(|f| f),
        )
    }

    #[tokio::test]
    async fn given_a_chunked_body_over_the_limit_when_posted_then_413_for_json_and_raw_handlers() {
        let raw = Router::new().route(
            "/raw",
            post(|body: Bytes| async move { body.len().to_string() }),
        );
        let app = || app().merge(api_layers(raw.clone(), 64));
        for uri in ["/echo", "/raw"] {
            let req = http::Request::post(uri)
                .header(header::CONTENT_TYPE, "application/json")
                .body(chunked(160))
                .unwrap();
            let response = app().oneshot(req).await.unwrap();
            assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
            assert_eq!(
                body_json(response).await["error"]["code"],
                "payload_too_large",
                "{uri}"
            );
        }
        let small = http::Request::post("/raw").body(chunked(32)).unwrap();
        assert_eq!(app().oneshot(small).await.unwrap().status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn given_unknown_route_or_method_when_called_then_json_404_and_405() {
        let response = call("GET", "/nope", None, "").await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(body_json(response).await["error"]["code"], "not_found");

        let response = call("GET", "/echo", None, "").await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert!(response.headers().contains_key(header::ALLOW));
        assert_eq!(
            body_json(response).await["error"]["code"],
            "method_not_allowed"
        );
    }

    #[test]
    fn given_authorization_headers_when_parsed_then_only_bearer_tokens_pass() {
        let mut headers = HeaderMap::new();
        assert!(matches!(
            bearer_token(&headers),
            Err(Error::Unauthorized(_))
        ));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(
            bearer_token(&headers),
            Err(Error::Unauthorized(_))
        ));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert!(matches!(
            bearer_token(&headers),
            Err(Error::Unauthorized(_))
        ));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc.def"),
        );
        assert_eq!(bearer_token(&headers).unwrap(), "abc.def");
    }

    #[test]
    fn given_message_texts_when_parsed_then_trimmed_and_bounded() {
        assert_eq!(message_text("  你好 \n").unwrap(), "你好");
        assert!(message_text(" \t\n").is_err());
        assert!(message_text(&"字".repeat(MAX_TEXT_CHARS)).is_ok());
        assert!(message_text(&"字".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn given_control_characters_in_a_message_text_when_parsed_then_stripped_and_lines_end_in_lf() {
        assert_eq!(
            message_text("hi\u{0}\u{1b}[2J there\r\nok\rthen\ttab").unwrap(),
            "hi there\nok\nthen\ttab"
        );
        assert!(
            message_text("\u{0}\u{1b}[0m").is_err(),
            "nothing left: empty"
        );
    }
}
