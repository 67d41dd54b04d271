//! Users, groups and permissions; keys revoked by logout, password change and admins;
//! login throttling; the opt-in legacy EnterMediaDB keys; the route table's guards.

use crate::harness::*;
use mediadb::api::endpoint::{decode, Access, Endpoint};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn users_groups_and_permissions() {
    let s = TestServer::start().await;
    let admin = s.login().await;
    s.post("module/asset/create", &admin, r#"{"id":"a1","sourcepath":"x/a1"}"#)
        .await;

    let c = s
        .post(
            "settings/users/create",
            &admin,
            r#"{"id":"testuser","password":"changeme1","firstname":"Test","email":"t@example.com"}"#,
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    assert_eq!(c.json["response"], json!({"status":"ok","id":"testuser"}));
    assert_eq!(c.json["data"]["groups"], json!([{"id":"users","name":"Users"}]));
    assert!(c.json["data"].get("password").is_none());
    assert_eq!(
        s.post(
            "settings/users/create",
            &admin,
            r#"{"id":"testuser","password":"changeme1"}"#
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post("settings/users/create", &admin, r#"{"id":"short","password":"x"}"#)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let key = s.login_as("testuser", "changeme1").await;
    assert_eq!(s.search_all(&key).await.status, StatusCode::OK);
    assert_eq!(
        s.post("module/asset/deleteassets", &key, r#"{"assetid":"a1"}"#)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.post("settings/users/search", &key, "{}").await.status,
        StatusCode::FORBIDDEN
    );

    // A group with the delete permission; membership takes effect on the next call.
    let g = s
        .post(
            "settings/groups/create",
            &admin,
            r#"{"id":"deleters","name":"Deleters","permissions":["api-delete-data"]}"#,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    let bad = s
        .post(
            "settings/groups/create",
            &admin,
            r#"{"id":"weird","permissions":["api-fly"]}"#,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json["response"]["details"].as_str().unwrap().contains("api-fly"));
    let add = s
        .post(
            "settings/users/groupadd",
            &admin,
            r#"{"id":"testuser","groupid":"deleters"}"#,
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{}", add.text);
    assert_eq!(
        s.post("module/asset/deleteassets", &key, r#"{"assetid":"a1"}"#)
            .await
            .status,
        StatusCode::OK
    );
    s.post(
        "settings/users/groupremove",
        &admin,
        r#"{"id":"testuser","groupid":"deleters"}"#,
    )
    .await;
    s.post("module/asset/create", &admin, r#"{"id":"a2","sourcepath":"x/a2"}"#)
        .await;
    assert_eq!(
        s.post("module/asset/deleteassets", &key, r#"{"assetid":"a2"}"#)
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    // Searching users and groups with the search language.
    let r = s
        .post(
            "settings/users/search",
            &admin,
            r#"{"query":{"terms":[{"field":"firstname","operation":"matches","value":"test"}]}}"#,
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(1));
    assert_eq!(r.json["results"][0]["id"], "testuser");
    let r = s
        .post(
            "settings/groups/search",
            &admin,
            r#"{"query":{"terms":[{"field":"permissions","operation":"exact","value":"api-delete-data"}]}}"#,
        )
        .await;
    assert_eq!(r.json["response"]["totalhits"], json!(2), "{}", r.text);
    let r = s
        .call(
            Method::PUT,
            "settings/groups/data/deleters",
            Some(&admin),
            Some(r#"{"permissions":["api-delete-data","api-manage-trash"]}"#),
        )
        .await;
    assert_eq!(
        r.json["data"]["permissions"],
        json!(["api-delete-data", "api-manage-trash"])
    );

    // Guards: the last administrator and the administrators group.
    assert_eq!(
        s.call(Method::DELETE, "settings/users/data/admin", Some(&admin), None)
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.post(
            "settings/users/groupremove",
            &admin,
            r#"{"id":"admin","groupid":"administrators"}"#
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.call(
            Method::PUT,
            "settings/users/data/admin",
            Some(&admin),
            Some(r#"{"enabled":"false"}"#)
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.call(
            Method::DELETE,
            "settings/groups/data/administrators",
            Some(&admin),
            None
        )
        .await
        .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        s.search_all(&admin).await.status,
        StatusCode::OK,
        "the admin still works"
    );

    // Permission changes are audited.
    let a = s
        .post(
            "lists/search/auditlog",
            &admin,
            r#"{"query":{"terms":[{"field":"action","operation":"exact","value":"permissionchange|groupadd"}]}}"#,
        )
        .await;
    assert!(a.json["response"]["totalhits"].as_u64().unwrap() >= 3, "{}", a.text);

    // Deleting a user kills their keys.
    assert_eq!(
        s.call(Method::DELETE, "settings/users/data/testuser", Some(&admin), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(s.search_all(&key).await.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn a_password_change_revokes_every_key_and_users_edit_only_themselves() {
    let s = TestServer::start().await;
    let admin = s.login().await;
    s.post(
        "settings/users/create",
        &admin,
        r#"{"id":"u1","password":"first-pass"}"#,
    )
    .await;
    s.post(
        "settings/users/create",
        &admin,
        r#"{"id":"u2","password":"second-pass"}"#,
    )
    .await;
    let k1 = s.login_as("u1", "first-pass").await;
    let k1b = s.login_as("u1", "first-pass").await;
    // Oneself: yes. Others, groups, enabling: no.
    assert_eq!(s.get("settings/users/data/u1", Some(&k1)).await.status, StatusCode::OK);
    assert_eq!(
        s.get("settings/users/data/u2", Some(&k1)).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(
            Method::PUT,
            "settings/users/data/u1",
            Some(&k1),
            Some(r#"{"groups":["administrators"]}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call(
            Method::PUT,
            "settings/users/data/u2",
            Some(&k1),
            Some(r#"{"password":"hijacked!!"}"#)
        )
        .await
        .status,
        StatusCode::FORBIDDEN
    );
    let r = s
        .call(
            Method::PUT,
            "settings/users/data/u1",
            Some(&k1),
            Some(r#"{"firstname":"Una","password":"new-password"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["response"]["keysrevoked"], "2");
    assert_eq!(s.search_all(&k1).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.search_all(&k1b).await.status, StatusCode::UNAUTHORIZED);
    let bad = s
        .call(
            Method::POST,
            "authentication/login",
            None,
            Some(r#"{"id":"u1","password":"first-pass"}"#),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    let k = s.login_as("u1", "new-password").await;
    assert_eq!(s.search_all(&k).await.status, StatusCode::OK);

    // An administrator lists a user's keys (never the keys) and revokes one, then all.
    let k2 = s.login_as("u2", "second-pass").await;
    let k2b = s.login_as("u2", "second-pass").await;
    let keys = s.post("settings/users/keys", &admin, r#"{"id":"u2"}"#).await;
    assert_eq!(keys.json["response"]["totalhits"], json!(2));
    assert!(!keys.text.contains(&k2) && !keys.text.contains(&k2b));
    let first = keys.json["results"][0]["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            "settings/users/revokekeys",
            &admin,
            &json!({"id":"u2","keyid":first}).to_string(),
        )
        .await;
    assert_eq!(r.json["response"]["rowsedited"], "1");
    let alive = [s.search_all(&k2).await.status, s.search_all(&k2b).await.status];
    assert_eq!(
        alive.iter().filter(|st| **st == StatusCode::UNAUTHORIZED).count(),
        1,
        "{alive:?}"
    );
    let r = s.post("settings/users/revokekeys", &admin, r#"{"id":"u2"}"#).await;
    assert_eq!(r.json["response"]["rowsedited"], "1");
    assert_eq!(s.search_all(&k2).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.search_all(&k2b).await.status, StatusCode::UNAUTHORIZED);
    // A disabled user cannot log in, and their keys die.
    let k2c = s.login_as("u2", "second-pass").await;
    s.call(
        Method::PUT,
        "settings/users/data/u2",
        Some(&admin),
        Some(r#"{"enabled":"false"}"#),
    )
    .await;
    assert_eq!(s.search_all(&k2c).await.status, StatusCode::UNAUTHORIZED);
    let r = s
        .call(
            Method::POST,
            "authentication/login",
            None,
            Some(r#"{"id":"u2","password":"second-pass"}"#),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test]
async fn repeated_failed_logins_make_the_next_attempts_wait() {
    let s = TestServer::start().await;
    for _ in 0..5 {
        let r = s
            .call(
                Method::POST,
                "authentication/login",
                None,
                Some(r#"{"id":"admin","password":"guess"}"#),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password waits now, and the answer says for how long.
    let body = format!(r#"{{"id":"admin","password":"{ADMIN_PASSWORD}"}}"#);
    let r = s.call(Method::POST, "authentication/login", None, Some(&body)).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text);
    assert!(r.headers["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 0);
    assert!(r.json["response"]["details"].as_str().unwrap().contains("try again in"));
    s.stop().await;
}

#[tokio::test]
async fn legacy_emdb_keys_only_when_switched_on() {
    // The key every EnterMediaDB document prints, for admin/admin with the default secret.
    const DOC_KEY: &str = "adminmd5421c0af185908a6c0c40d50fd5e3f16760d5580bc";
    let on = TestServer::start_with(|c| {
        c.admin_password = Some("admin".into());
        c.legacy_emdb_keys = true;
    })
    .await;
    assert_eq!(on.search_all(DOC_KEY).await.status, StatusCode::OK);
    let r = on
        .client
        .post(on.url("module/asset/search"))
        .header("Cookie", format!("entermedia.key={DOC_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    on.stop().await;
    let off = TestServer::start_with(|c| c.admin_password = Some("admin".into())).await;
    assert_eq!(off.search_all(DOC_KEY).await.status, StatusCode::UNAUTHORIZED);
    off.stop().await;
}

#[tokio::test]
async fn every_route_is_public_by_name_or_guarded() {
    let s = TestServer::start().await;
    let admin = s.login().await;
    // A user in no group at all holds no permission.
    s.post(
        "settings/users/create",
        &admin,
        r#"{"id":"nobody","password":"nobody-pw","groups":[]}"#,
    )
    .await;
    s.post(
        "settings/users/groupremove",
        &admin,
        r#"{"id":"nobody","groupid":"users"}"#,
    )
    .await;
    let key = s.login_as("nobody", "nobody-pw").await;
    let public = [
        "authentication/login",
        "authentication/getkey",
        "system/systemstatus",
        "test/helloworld",
        "system/acceptingconnections",
        "lists/search/endpoint",
        "authentication/validateuser",
    ];
    for (method, path) in Endpoint::samples() {
        let e = decode(&method, path).unwrap();
        match e.access() {
            Access::Public => assert!(public.contains(&path), "{path} is public but not on the list"),
            Access::Authenticated => {}
            Access::SelfOr(_) | Access::Requires(_) => {
                let a = s
                    .call(
                        method.clone(),
                        path,
                        Some(&key),
                        Some(r#"{"assetid":"x","id":"someone"}"#),
                    )
                    .await;
                assert_eq!(
                    a.status,
                    StatusCode::FORBIDDEN,
                    "{method} {path} for a user without permissions: {}",
                    a.text
                );
            }
        }
    }
    s.stop().await;
}

/// An owner who is not a user renders without a name (and is remembered as no user);
/// once the user is created, the very next answer names them.
#[tokio::test]
async fn an_owner_becomes_named_once_the_user_exists() {
    let s = TestServer::start().await;
    let admin = s.login().await;
    let c = s
        .post("module/asset/create", &admin, r#"{"id":"own1","sourcepath":"x/own1"}"#)
        .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let u = s
        .call(
            Method::PUT,
            "module/asset/data/own1",
            Some(&admin),
            Some(r#"{"owner":"ghost"}"#),
        )
        .await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.text);
    for _ in 0..2 {
        let g = s.get("module/asset/data/own1", Some(&admin)).await;
        assert_eq!(g.json["data"]["owner"], json!({"id":"ghost"}), "{}", g.text);
    }
    let made = s
        .post(
            "settings/users/create",
            &admin,
            r#"{"id":"ghost","password":"changeme1","firstname":"Casper","lastname":"Ghost"}"#,
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let g = s.get("module/asset/data/own1", Some(&admin)).await;
    assert_eq!(g.json["data"]["owner"]["id"], "ghost", "{}", g.text);
    let name = g.json["data"]["owner"]["name"].as_str().unwrap_or_default();
    assert!(name.contains("Casper"), "the new user's name: {}", g.text);
    let hits = s
        .post(
            "module/asset/search",
            &admin,
            r#"{"query":{"terms":[{"field":"id","operation":"matches","value":"own1"}]}}"#,
        )
        .await;
    assert_eq!(
        hits.json["results"][0]["owner"], g.json["data"]["owner"],
        "{}",
        hits.text
    );
}

async fn import_users(s: &TestServer, key: &str, csv: &str) -> Answer {
    s.post_file("settings/users/import", key, &[], "users.csv", csv.as_bytes().to_vec())
        .await
}

/// Users out as CSV (no secret in it) and in again: new users can log in with the
/// file's password, existing ones get the columns the file has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_exported_and_imported_as_csv() {
    let s = TestServer::start().await;
    let key = s.login().await;
    let g = s
        .post("settings/groups/create", &key, r#"{"id":"editors","name":"Editors"}"#)
        .await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    let csv = "id,firstname,lastname,email,groups,password\r\n\
               ann,Ann,Lee,ann@example.com,users|editors,ann-password\r\n\
               bob,Bob,,bob@example.com,,bob-password\r\n\
               nopw,No,Password,,,\r\n\
               short,Short,,,,abc\r\n";
    let r = import_users(&s, &key, csv).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let resp = &r.json["response"];
    assert_eq!(
        (&resp["rows"], &resp["created"]),
        (&json!("4"), &json!("2")),
        "{}",
        r.text
    );
    let errors: Vec<(i64, &str)> = resp["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_i64().unwrap(), e["id"].as_str().unwrap()))
        .collect();
    assert_eq!(errors, [(4, "nopw"), (5, "short")], "{}", r.text);
    // Ann can log in and is an editor; Bob got the default group.
    let ann = s.login_as("ann", "ann-password").await;
    assert!(!ann.is_empty());
    let a = s.get("settings/users/data/ann", Some(&key)).await;
    assert_eq!(a.json["data"]["lastname"], "Lee");
    let groups: Vec<&str> = a.json["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert!(groups.contains(&"editors") && groups.contains(&"users"), "{groups:?}");
    let b = s.get("settings/users/data/bob", Some(&key)).await;
    assert_eq!(b.json["data"]["groups"][0]["id"], "users", "{}", b.text);

    // The export: every user, groups as ids, no secret.
    let out = s
        .client
        .get(s.url("settings/users/export/user.csv"))
        .header("X-entermedia.key", &key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let text = out.text().await.unwrap();
    assert!(
        text.starts_with("id,firstname,lastname,email,screenname,enabled,groups\r\n"),
        "{text}"
    );
    assert!(text.contains("\r\nann,Ann,Lee,ann@example.com,,true,"), "{text}");
    assert!(
        !text.to_lowercase().contains("argon") && !text.contains("password"),
        "{text}"
    );

    // Again with changes: Ann disabled (her keys stop working) and out of the editors; Bob
    // unchanged; an unknown column refuses the file.
    let again = "id,lastname,enabled,groups\r\nann,Lee-Smith,false,users\r\nbob,,true,\r\n";
    let r = import_users(&s, &key, again).await;
    let resp = &r.json["response"];
    assert_eq!(
        (&resp["rowsedited"], &resp["unchanged"]),
        (&json!("1"), &json!("1")),
        "{}",
        r.text
    );
    let a = s.get("settings/users/data/ann", Some(&key)).await;
    assert_eq!(a.json["data"]["lastname"], "Lee-Smith");
    assert_eq!(a.json["data"]["enabled"], "false");
    assert_eq!(a.json["data"]["groups"].as_array().unwrap().len(), 1, "{}", a.text);
    assert_eq!(
        s.post("module/asset/search", &ann, "{}").await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = import_users(&s, &key, "id,role\r\nann,boss\r\n").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    // Only user managers.
    let bob = s.login_as("bob", "bob-password").await;
    let r = import_users(&s, &bob, "id,password\r\nmallory,mallory-password\r\n").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        s.get("settings/users/data/mallory", Some(&key)).await.status,
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}
