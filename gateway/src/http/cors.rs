//! The CORS policy from `--cors-origins`. Browsers apply it to HTTP long-polling (and these
//! routes); WebSocket handshakes are not subject to CORS.

use axum::http::{HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::Error;

/// The CORS layer for `origins`: `None` when empty (same-origin only), any origin without
/// credentials when one entry is `*`, else exactly the listed origins, with credentials so
/// cookie-based sticky sessions and the session cookie work across origins.
pub(crate) fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, Error> {
    let origins: Vec<&str> = origins
        .iter()
        .map(|origin| origin.trim())
        .filter(|origin| !origin.is_empty())
        .collect();
    if origins.is_empty() {
        return Ok(None);
    }
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION]);
    if origins.contains(&"*") {
        return Ok(Some(base.allow_origin(AllowOrigin::any())));
    }
    let origins = origins
        .into_iter()
        .map(|origin| {
            HeaderValue::from_str(origin).map_err(|_| Error::CorsOrigin(origin.to_owned()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        base.allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn policies() {
        assert!(matches!(cors_layer(&[]), Ok(None)));
        assert!(matches!(cors_layer(&origins(&[" "])), Ok(None)));
        assert!(matches!(cors_layer(&origins(&["*"])), Ok(Some(_))));
        assert!(matches!(
            cors_layer(&origins(&["http://a.test", "https://b.test:8443"])),
            Ok(Some(_))
        ));
        assert!(matches!(
            cors_layer(&origins(&["http://bad\n.test"])),
            Err(Error::CorsOrigin(_))
        ));
    }
}
