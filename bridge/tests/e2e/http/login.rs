//! `protect_reads`: every read but `/healthz` and the login page needs the token or a login;
//! the login's cookie carries the dashboard, its live stream and its CSV link.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use ctrl22_bridge::http::HttpOptions;
use serde_json::json;
use tower::ServiceExt;

use super::fixture::{fixture, Setup, TOKEN};

fn protected() -> Setup {
    Setup {
        options: HttpOptions {
            protect_reads: true,
            ..HttpOptions::default()
        },
        ..Setup::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_need_the_token_or_a_login_that_logout_ends() {
    let f = fixture(protected()).await;
    let bearer = format!("Bearer {TOKEN}");

    for uri in [
        "/api/v1/site",
        "/api/v1/nodes",
        "/api/v1/sessions?format=csv",
        "/api/v1/stream",
        "/metrics",
        "/readyz",
    ] {
        let answer = f.get(uri).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{uri}");
        assert!(answer.error().contains("login"), "{uri}: {}", answer.text);
    }
    // What the login page needs stays open.
    for uri in ["/healthz", "/", "/app.js", "/style.css", "/favicon.svg"] {
        assert_eq!(f.get(uri).await.status, StatusCode::OK, "{uri}");
    }
    let auth = f.get("/api/v1/auth").await.json();
    assert_eq!(
        auth,
        json!({"writable": true, "protect_reads": true, "authenticated": false})
    );
    let with_token = f
        .call("GET", "/api/v1/site", &[("authorization", &bearer)], "")
        .await;
    assert_eq!(with_token.status, StatusCode::OK);

    // A wrong token logs nobody in.
    let wrong = f
        .call("POST", "/api/v1/login", &[], r#"{"token":"guess"}"#)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
    let garbage = f.call("POST", "/api/v1/login", &[], "token=guess").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);

    let login = f
        .call(
            "POST",
            "/api/v1/login",
            &[("content-type", "application/json")],
            &json!({ "token": TOKEN }).to_string(),
        )
        .await;
    assert_eq!(login.status, StatusCode::NO_CONTENT, "{}", login.text);
    let set_cookie = login.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(flag), "{flag} missing: {set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let (name, id) = cookie.split_once('=').unwrap();
    assert_eq!(name, "ctrl22_session");
    assert_eq!(id.len(), 64, "256 random bits in hex");
    assert!(!set_cookie.contains(TOKEN));

    let with_cookie = |uri: &'static str| {
        let cookie = cookie.clone();
        let app = f.app.clone();
        async move {
            app.oneshot(
                Request::get(uri)
                    .header(header::COOKIE, cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(with_cookie("/api/v1/site").await.status(), StatusCode::OK);
    let csv = with_cookie("/api/v1/sessions?format=csv").await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let stream = with_cookie("/api/v1/stream").await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    drop(stream);
    let auth = f
        .call("GET", "/api/v1/auth", &[("cookie", &cookie)], "")
        .await
        .json();
    assert_eq!(auth["authenticated"], json!(true));

    // A write with the cookie needs X-Requested-With, which no other site's form can send.
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let bare = f
        .call("PUT", &uri, &[("cookie", &cookie)], r#"{"name":"Cookie"}"#)
        .await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN, "{}", bare.text);
    assert_ne!(f.bay(dev).settings.name, "Cookie");
    let write = f
        .call(
            "PUT",
            &uri,
            &[("cookie", &cookie), ("x-requested-with", "ctrl22")],
            r#"{"name":"Cookie"}"#,
        )
        .await;
    assert_eq!(write.status, StatusCode::OK, "{}", write.text);
    assert_eq!(f.bay(dev).settings.name, "Cookie");

    let logout = f
        .call("POST", "/api/v1/logout", &[("cookie", &cookie)], "")
        .await;
    assert_eq!(logout.status, StatusCode::NO_CONTENT);
    let cleared = logout.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(
        with_cookie("/api/v1/site").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Each refused read and login was counted: 6 reads, 2 logins, 1 cookie write.
    f.counted("http", 9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_protect_reads_the_page_learns_it_is_read_only() {
    let f = fixture(Setup {
        token: None,
        ..Setup::default()
    })
    .await;
    let auth = f.get("/api/v1/auth").await.json();
    assert_eq!(
        auth,
        json!({"writable": false, "protect_reads": false, "authenticated": false})
    );
    let login = f
        .call("POST", "/api/v1/login", &[], r#"{"token":"anything"}"#)
        .await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(login.error().contains("read-only"), "{}", login.text);
}
