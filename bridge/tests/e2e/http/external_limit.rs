//! `PUT /api/v1/site/external_limit` against a real bridge: a home energy manager's limit
//! lowers the site limit in force and shows in `power.external`; `null` lifts it; bad
//! bodies, a missing token and unknown circuits are refused with a reason and counted.

use std::time::Duration;

use axum::http::StatusCode;
use ctrl22_bridge::site::snapshot::SiteSnapshot;

use super::fixture::{fixture, Setup};

/// Waits (up to 5 s) until the site's snapshot satisfies `done`.
async fn until(f: &super::fixture::Fixture, what: &str, done: impl Fn(&SiteSnapshot) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done(&f.site.snapshot()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: {:?}",
            f.site.snapshot().power
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_limit_over_http_lowers_the_site_and_is_lifted() {
    let f = fixture(Setup::default()).await;
    let ceiling = f.site.snapshot().ceiling_a;
    // Section 14a EnWG dimming: 4.2 kW, i.e. 6 A a phase at 230 V.
    let answer = f
        .put("/api/v1/site/external_limit", r#"{"watts": 4200}"#)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    until(&f, "the dimming in force", |s| {
        s.limit_a.iter().all(|a| (*a - 6.0).abs() < 0.5) && s.power.external.len() == 1
    })
    .await;
    let site = f.get("/api/v1/site").await.json();
    assert_eq!(site["power"]["external"][0]["watts"], 4200, "{site}");
    assert_eq!(site["power"]["external"][0]["scope"], "site", "{site}");

    // Per phase; above the ceiling it lowers nothing.
    let answer = f
        .put("/api/v1/site/external_limit", r#"{"amps": [10, 500, 10]}"#)
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    until(&f, "the amps in force", |s| {
        (s.limit_a[0] - 10.0).abs() < 0.05 && (s.limit_a[1] - ceiling[1]).abs() < 0.05
    })
    .await;

    let answer = f.put("/api/v1/site/external_limit", "null").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    until(&f, "lifted", |s| {
        s.power.external.is_empty() && s.limit_a == ceiling
    })
    .await;

    let before = f.rejected_http().await;
    for (body, reason) in [
        (r#"{"watts": 1e12}"#, "watts must be"),
        (r#"{"amps": [16, "x", 16]}"#, "not {"),
        (r#"{"amps": [16, -1, 16]}"#, "amps must be"),
        (r#"{"watts": 1, "amps": [1, 1, 1]}"#, "exactly one"),
    ] {
        let answer = f.put("/api/v1/site/external_limit", body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer.error().contains(reason),
            "{body}: {}",
            answer.error()
        );
    }
    let answer = f
        .put(
            "/api/v1/circuits/garage/external_limit",
            r#"{"watts": 4200}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text);
    let answer = f
        .call(
            "PUT",
            "/api/v1/site/external_limit",
            &[("content-type", "application/json")],
            r#"{"watts": 4200}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{}", answer.text);
    assert_eq!(f.rejected_http().await, before + 6);
    assert!(f.site.snapshot().power.external.is_empty());
}
