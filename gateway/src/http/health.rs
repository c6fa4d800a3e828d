//! `GET /healthz`: the process is up and serving HTTP.

/// Always `200 ok` while the server accepts requests.
pub(super) async fn healthz() -> &'static str {
    "ok"
}
