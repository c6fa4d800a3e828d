//! The chat page: `GET /` and its assets. The page's own files (gateway/web) are embedded in
//! the binary; the official socket.io-client browser build is read at run time from the
//! `--web-modules-dir` that `npm ci` in gateway/web fills, so building needs no npm.

use axum::{
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use super::HttpState;

/// The page's HTML.
const INDEX_HTML: &str = include_str!("../../web/index.html");
/// The page's script.
const APP_JS: &str = include_str!("../../web/app.js");
/// The page's stylesheet.
const STYLE_CSS: &str = include_str!("../../web/style.css");
/// Where the browser build is, inside the modules directory.
const SOCKET_IO_CLIENT: &str = "socket.io-client/dist/socket.io.min.js";

/// A response with `body`, its content type, and `no-cache` so a new deploy's page is used at
/// once (the files are small).
fn asset(content_type: &'static str, body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `GET /`: the chat page.
pub(super) async fn index() -> Response {
    let mut response = asset("text/html; charset=utf-8", INDEX_HTML);
    // The page loads its own scripts and styles and talks to its own origin only.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    response
}

/// `GET /assets/app.js`.
pub(super) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /assets/style.css`.
pub(super) async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// `GET /assets/socket.io.min.js`: read from the modules directory on each request; 503 with
/// what to do when it is not installed.
pub(super) async fn socket_io_js(State(state): State<HttpState>) -> Response {
    let path = state.web_modules_dir.join(SOCKET_IO_CLIENT);
    match tokio::fs::read(&path).await {
        Ok(body) => asset("text/javascript; charset=utf-8", body),
        Err(err) => {
            tracing::warn!(path = %path.display(), %err, "socket.io-client browser build missing");
            let body = format!(
                "the socket.io-client browser build is missing ({}: {err}): run `npm ci` in \
                 gateway/web, or point --web-modules-dir at its node_modules\n",
                path.display()
            );
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
    }
}
