//! Logging in and presenting the key every way EnterMediaDB clients do; keys are
//! revocable; cookies do not work for foreign origins.

use crate::harness::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn login_getkey_and_every_way_of_presenting_the_key() {
    let s = TestServer::start().await;
    // POST JSON login sets the site cookie.
    let r = s
        .client
        .post(s.url("authentication/login"))
        .header("Content-Type", "application/json")
        .body(format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let a = answer(r).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json["response"], json!({"status":"ok","user":"admin"}));
    let key = a.json["results"]["entermediakey"].as_str().unwrap().to_string();
    assert!(key.starts_with("adminmd542"), "{key}");
    assert_eq!(a.json["results"]["userid"], "admin");
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("entermedia.keyassets={key}")) && c.contains("HttpOnly")),
        "{cookies:?}"
    );

    // GET login with the query string, as the PHP client does.
    let r = s
        .client
        .get(format!(
            "{}?id=admin&password={ADMIN_PASSWORD}",
            s.url("authentication/login")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // getkey answers a key without a cookie.
    let r = s
        .client
        .post(s.url("authentication/getkey"))
        .body(format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#))
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("set-cookie").is_none());
    let g = answer(r).await;
    assert!(g.json["results"]["entermediakey"]
        .as_str()
        .unwrap()
        .starts_with("adminmd542"));
    // Wrong password: 401 with the EMDB invalidlogin marker.
    let bad = s
        .call(
            Method::POST,
            "authentication/login",
            None,
            Some(r#"{"id":"admin","password":"nope"}"#),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(bad.json["results"]["status"], "invalidlogin");
    let none = s.call(Method::POST, "authentication/login", None, Some("{}")).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);

    let status_url = s.url("module/asset/search");
    let check = |rb: reqwest::RequestBuilder, how: &'static str| async move {
        let r = rb.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "key by {how}");
    };
    check(
        s.client
            .post(&status_url)
            .header("Cookie", format!("entermedia.key={key}")),
        "cookie entermedia.key",
    )
    .await;
    check(
        s.client
            .post(&status_url)
            .header("Cookie", format!("entermedia.keyassets={key}")),
        "cookie entermedia.keyassets",
    )
    .await;
    check(
        s.client.post(format!("{status_url}?entermedia.key={key}")),
        "query parameter",
    )
    .await;
    check(
        s.client
            .post(&status_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("entermedia.key={key}")),
        "form field",
    )
    .await;
    check(
        s.client
            .post(&status_url)
            .header("Content-Type", "text/plain")
            .body(format!(r#"{{"entermedia.key":"{key}"}}"#)),
        "JSON body",
    )
    .await;
    check(
        s.client.post(&status_url).header("X-entermedia.key", &key),
        "X-entermedia.key",
    )
    .await;
    check(
        s.client
            .post(&status_url)
            .header("X-token", &key)
            .header("X-tokentype", "entermedia"),
        "X-token",
    )
    .await;

    // EMDB's adminkey token type logs anyone in by e-mail; never here.
    let r = s
        .client
        .post(&status_url)
        .header("X-token", "anything")
        .header("X-tokentype", "adminkey")
        .header("X-email", "admin@example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn logout_revokes_the_key() {
    let s = TestServer::start().await;
    let k1 = s.login().await;
    let k2 = s.login().await;
    assert_ne!(k1, k2, "keys are random");
    let r = s
        .client
        .post(s.url("authentication/logout"))
        .header("X-entermedia.key", &k1)
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let a = answer(r).await;
    assert_eq!(a.json["response"]["status"], "logout");
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("entermedia.keyassets=;") && c.contains("Max-Age=0")));
    assert_eq!(
        s.search_all(&k1).await.status,
        StatusCode::UNAUTHORIZED,
        "a logged-out key is dead"
    );
    assert_eq!(s.search_all(&k2).await.status, StatusCode::OK, "other keys live on");
    // Keys are stored hashed: the database holds no key.
    let db = s.stored_bytes().await;
    let needle = k2.as_bytes();
    assert!(!db.windows(needle.len()).any(|w| w == needle));
    s.stop().await;
}

#[tokio::test]
async fn cors_lets_header_keys_through_but_not_foreign_cookies() {
    let s = TestServer::start_with(|c| c.cors_origins = vec!["https://trusted.example".into()]).await;
    let key = s.login().await;
    let url = s.url("module/asset/search");
    // A preflight for the token headers succeeds, without credentials.
    let r = s
        .client
        .request(Method::OPTIONS, &url)
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "x-token,x-tokentype")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .contains("x-tokentype"));
    assert!(r.headers().get("access-control-allow-credentials").is_none());
    // A header key works from any origin.
    let r = s
        .client
        .post(&url)
        .header("Origin", "https://evil.example")
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A cookie from a foreign origin is ambient authority: refused.
    let r = s
        .client
        .post(&url)
        .header("Origin", "https://evil.example")
        .header("Cookie", format!("entermedia.key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A configured origin may use cookies, with credentials allowed.
    let r = s
        .client
        .post(&url)
        .header("Origin", "https://trusted.example")
        .header("Cookie", format!("entermedia.key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "https://trusted.example");
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    // The server's own origin may too (the built-in pages).
    let own = s.base.clone();
    let r = s
        .client
        .post(&url)
        .header("Origin", own)
        .header("Cookie", format!("entermedia.key={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Public endpoints need nothing.
    let r = s.client.get(s.url("system/systemstatus")).send().await.unwrap();
    assert_eq!(answer(r).await.json, json!({"response":{"status":"ok"}}));
    let r = s.client.get(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = s.client.get(format!("{}/readyz", s.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        answer(r).await.json,
        json!({"status":"ready","database":"ok","storage":"ok"})
    );
    // A request id is echoed, or made.
    let r = s
        .client
        .get(s.url("system/systemstatus"))
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = s.client.get(s.url("system/systemstatus")).send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 16);
    s.stop().await;
}
