//! The plain-HTTP listener (`redirect_listen`): every request answered with a 308 to the
//! same path and query on HTTPS, so a POST stays a POST with its body (301/302 would let
//! clients turn it into a GET).

use axum::extract::Request;
use axum::http::{header, uri::Authority, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;

pub fn router(https_port: u16) -> Router {
    Router::new().fallback(move |req: Request| async move { redirect(&req, https_port) })
}

/// Where `req` goes on HTTPS, or `None` without a usable `Host`.
pub fn location(req: &Request, https_port: u16) -> Option<String> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(Authority::as_str))?;
    let authority: Authority = host.parse().ok()?;
    if authority.as_str().contains('@') {
        return None;
    }
    let port = if https_port == 443 {
        String::new()
    } else {
        format!(":{https_port}")
    };
    let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Some(format!("https://{}{port}{path}", authority.host()))
}

fn redirect(req: &Request, https_port: u16) -> Response {
    match location(req, https_port) {
        Some(to) => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, to.clone())],
            format!("Use HTTPS: {to}\n"),
        )
            .into_response(),
        None => (
            StatusCode::BAD_REQUEST,
            "This address only redirects to HTTPS, which needs a Host header.\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, host: Option<&str>) -> Request {
        let mut b = Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(header::HOST, h);
        }
        b.body(axum::body::Body::empty()).unwrap()
    }

    #[test]
    fn keeps_path_and_query_and_swaps_the_port() {
        let r = req("/assets/mediadb/services/x?a=1&b=%20", Some("media.example:8080"));
        assert_eq!(
            location(&r, 8443).as_deref(),
            Some("https://media.example:8443/assets/mediadb/services/x?a=1&b=%20")
        );
        assert_eq!(
            location(&req("/", Some("media.example")), 443).as_deref(),
            Some("https://media.example/")
        );
        assert_eq!(
            location(&req("/a", Some("[::1]:80")), 443).as_deref(),
            Some("https://[::1]/a")
        );
    }

    #[test]
    fn refuses_hosts_that_are_not_hosts() {
        assert_eq!(location(&req("/", None), 443), None);
        assert_eq!(location(&req("/", Some("evil.example/x")), 443), None);
        assert_eq!(location(&req("/", Some("user@evil.example")), 443), None);
    }
}
