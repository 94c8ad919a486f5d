//! Writes: `PUT` settings (all or nothing, refusals naming the field), buttons, auth
//! failures; every refusal counted and nothing changed by it.

use std::sync::Arc;

use axum::http::StatusCode;
use ctrl22_bridge::handle::SiteHandle;
use ctrl22_bridge::http::{self, HttpOptions, BODY_LIMIT_BYTES};
use ctrl22_bridge::site::snapshot::SiteSnapshot;
use serde_json::json;

use super::fixture::{call, fixture, Setup, TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_change_through_put_and_buttons() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[1];
    let uri = format!("/api/v1/nodes/{dev}");
    let answer = f
        .put(
            &uri,
            r#"{"mode":"pv","max_current":16,"name":"Bay 3","priority":1,"departure":"07:30","target_energy_kwh":20,"enabled":true}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["mode"], json!("pv"));
    // A read right after the answer shows the change: no waiting for a control cycle.
    let read = f.get(&uri).await.json();
    assert_eq!(read["settings"]["name"], json!("Bay 3"));
    assert_eq!(read["mode"], json!("pv"));
    let bay = f.bay(dev);
    assert_eq!(bay.settings.name, "Bay 3");
    assert_eq!(bay.settings.max_current.get(), 160);
    assert_eq!(bay.settings.priority, 1);
    assert_eq!(bay.settings.departure.unwrap().to_string(), "07:30");
    assert_eq!(bay.settings.target_energy_wh, Some(20_000));

    // null clears the departure.
    let answer = f.put(&uri, r#"{"departure":null}"#).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(f.bay(dev).settings.departure, None);

    let answer = f
        .put(
            "/api/v1/site",
            r#"{"strategy":"priority","max_current":[32,32,25]}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.json()["strategy"], json!("priority"));
    assert_eq!(answer.json()["limit_a"], json!([32.0, 32.0, 25.0]));
    assert_eq!(
        f.get("/api/v1/site").await.json()["limit_a"],
        json!([32.0, 32.0, 25.0])
    );
    assert_eq!(f.site.snapshot().limit_a, [32.0, 32.0, 25.0]);

    let auth = format!("Bearer {TOKEN}");
    for action in ["start", "stop"] {
        let answer = f
            .call(
                "POST",
                &format!("{uri}/{action}"),
                &[("authorization", &auth)],
                "",
            )
            .await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
    }
    let answer = f
        .call(
            "POST",
            &format!("{uri}/explode"),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    let answer = f
        .call(
            "POST",
            "/api/v1/nodes/001122334455/start",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_bay_can_be_neither_released_nor_forgotten() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let auth = format!("Bearer {TOKEN}");
    let release = f
        .call(
            "POST",
            &format!("{uri}/release"),
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(release.status, StatusCode::BAD_REQUEST, "{}", release.text);
    assert!(release.error().contains("online"), "{}", release.text);
    let forget = f
        .call("DELETE", &uri, &[("authorization", &auth)], "")
        .await;
    assert_eq!(forget.status, StatusCode::BAD_REQUEST, "{}", forget.text);
    assert!(forget.error().contains("online"), "{}", forget.text);
    assert!(f.bay(dev).online, "still there");
    let unknown = f
        .call(
            "DELETE",
            "/api/v1/nodes/001122334455",
            &[("authorization", &auth)],
            "",
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let anonymous = f.call("DELETE", &uri, &[], "").await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failures_change_nothing_and_are_counted() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let before = f.bay(dev).settings;
    let body = r#"{"mode":"off"}"#;

    let none = f.call("PUT", &uri, &[], body).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert!(none.error().contains("bearer"), "{}", none.text);
    let wrong = f
        .call("PUT", &uri, &[("authorization", "Bearer nope")], body)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.error(), "wrong token");
    let basic = f
        .call(
            "PUT",
            &uri,
            &[("authorization", &format!("Basic {TOKEN}"))],
            body,
        )
        .await;
    assert_eq!(basic.status, StatusCode::UNAUTHORIZED);
    let button = f.call("POST", &format!("{uri}/stop"), &[], "").await;
    assert_eq!(button.status, StatusCode::UNAUTHORIZED);

    assert_eq!(f.bay(dev).settings, before);
    assert_eq!(f.rejected_http().await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_the_api_is_read_only() {
    let f = fixture(Setup {
        token: None,
        ..Setup::default()
    })
    .await;
    let dev = &f.devs[0];
    let answer = f
        .put(&format!("/api/v1/nodes/{dev}"), r#"{"mode":"off"}"#)
        .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
    assert!(answer.error().contains("read-only"));
    assert_eq!(
        f.put("/api/v1/site", r#"{"strategy":"fcfs"}"#).await.status,
        StatusCode::FORBIDDEN
    );
    assert_ne!(
        f.bay(dev).settings.mode,
        Some(ctrl22_bridge::allocate::ChargeMode::Off)
    );
    assert_eq!(f.get("/api/v1/site").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_out_of_range_settings_change_nothing() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[2];
    let uri = format!("/api/v1/nodes/{dev}");
    let before = f.bay(dev).settings;
    let site_before = f.site.snapshot().limit_a;

    let cases: &[(&str, &str, StatusCode, &str)] = &[
        (
            &uri,
            "{not json",
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            &uri,
            "[1,2]",
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            &uri,
            r#"{"colour":"red"}"#,
            StatusCode::BAD_REQUEST,
            "unknown field `colour`",
        ),
        (
            &uri,
            r#"{"mode":"turbo"}"#,
            StatusCode::BAD_REQUEST,
            "turbo",
        ),
        (
            &uri,
            r#"{"max_current":"16"}"#,
            StatusCode::BAD_REQUEST,
            "invalid type",
        ),
        (
            &uri,
            r#"{"departure":"25:00"}"#,
            StatusCode::BAD_REQUEST,
            "HH:MM",
        ),
        (&uri, "{}", StatusCode::BAD_REQUEST, "no settings"),
        (
            &uri,
            r#"{"max_current":99}"#,
            StatusCode::BAD_REQUEST,
            "above the configured ceiling of 32 A",
        ),
        (
            &uri,
            r#"{"max_current":3}"#,
            StatusCode::BAD_REQUEST,
            "at least 6 A",
        ),
        (
            &uri,
            r#"{"priority":5000}"#,
            StatusCode::BAD_REQUEST,
            "priority",
        ),
        (
            &uri,
            r#"{"target_energy_kwh":-1}"#,
            StatusCode::BAD_REQUEST,
            "0-200 kWh",
        ),
        (&uri, r#"{"name":"   "}"#, StatusCode::BAD_REQUEST, "1-64"),
        // All or nothing: the good settings before and after the bad one stay unchanged.
        (
            &uri,
            r#"{"name":"Kept?","mode":"off","max_current":100}"#,
            StatusCode::BAD_REQUEST,
            "ceiling",
        ),
        (
            &uri,
            r#"{"max_current":10,"priority":1,"target_energy_kwh":500}"#,
            StatusCode::BAD_REQUEST,
            "0-200 kWh",
        ),
        (
            "/api/v1/nodes/001122334455",
            r#"{"mode":"off"}"#,
            StatusCode::NOT_FOUND,
            "no bay",
        ),
        (
            "/api/v1/site",
            r#"{"max_current":[32,32,5000]}"#,
            StatusCode::BAD_REQUEST,
            "above the configured ceiling",
        ),
        (
            "/api/v1/site",
            r#"{"max_current":[32,32]}"#,
            StatusCode::BAD_REQUEST,
            "not a settings object",
        ),
        (
            "/api/v1/site",
            r#"{"strategy":"fcfs","max_current":[10,-1,10]}"#,
            StatusCode::BAD_REQUEST,
            "at least 0 A",
        ),
        (
            "/api/v1/site",
            r#"{"voltage":400}"#,
            StatusCode::BAD_REQUEST,
            "unknown field",
        ),
    ];
    for (uri, body, status, message) in cases {
        let answer = f.put(uri, body).await;
        assert_eq!(answer.status, *status, "{uri} {body}: {}", answer.text);
        assert!(
            answer.error().contains(message),
            "{uri} {body}: {:?} does not say {message:?}",
            answer.error()
        );
    }
    assert_eq!(f.bay(dev).settings, before);
    let site = f.site.snapshot();
    assert_eq!(site.limit_a, site_before);
    assert_eq!(site.strategy, ctrl22_bridge::allocate::Strategy::Fair);

    let huge = format!(r#"{{"name":"{}"}}"#, "x".repeat(BODY_LIMIT_BYTES));
    assert_eq!(
        f.put(&uri, &huge).await.status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    assert_eq!(f.bay(dev).settings, before);

    assert!(f.rejected_http().await >= u64::try_from(cases.len()).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_is_taken_whole_or_not_at_all() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let before = f.bay(dev).settings;
    let site_before = f.site.snapshot();
    // The first field is good, the second is not: the first stays as it was.
    for (uri, body, field) in [
        (
            uri.as_str(),
            r#"{"max_current":10,"target_energy_kwh":500}"#,
            "target_energy",
        ),
        (uri.as_str(), r#"{"priority":3,"name":""}"#, "name"),
        (
            "/api/v1/site",
            r#"{"max_current":[20,20,5000]}"#,
            "max_current",
        ),
        (
            "/api/v1/site",
            r#"{"max_current":[20,-1,20],"strategy":"fcfs"}"#,
            "max_current",
        ),
    ] {
        let answer = f.put(uri, body).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{body}: {}",
            answer.text
        );
        assert!(answer.error().contains(field), "{body}: {}", answer.text);
        assert_eq!(f.bay(dev).settings, before, "{body}");
        let site = f.site.snapshot();
        assert_eq!(site.limit_a, site_before.limit_a, "{body}");
        assert_eq!(site.strategy, site_before.strategy, "{body}");
    }
    assert!(f.rejected_http().await >= 4);
}

/// Values above the configured ceiling (`site.max_current`, `nodes.<dev>.max_current`) are
/// refused with the field and the ceiling named; at the ceiling and below they are taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_above_a_ceiling_are_refused_naming_it() {
    let f = fixture(Setup::default()).await;
    let dev = &f.devs[0];
    let uri = format!("/api/v1/nodes/{dev}");
    let site = f.site.snapshot();
    let ceiling = site.ceiling_a;
    let bay_ceiling = f.bay(dev).ceiling_a;
    let before = f.bay(dev).settings;

    let over = [ceiling[0], ceiling[1], ceiling[2] + 1.0];
    let answer = f
        .put("/api/v1/site", &json!({ "max_current": over }).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let error = answer.error();
    assert!(error.contains("max_current"), "{error}");
    assert!(error.contains("ceiling"), "{error}");
    assert!(error.contains(&format!("{}", ceiling[2])), "{error}");
    assert_eq!(f.site.snapshot().limit_a, site.limit_a);

    let answer = f
        .put(
            &uri,
            &json!({ "max_current": bay_ceiling + 1.0 }).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.text);
    let error = answer.error();
    assert!(error.contains("max_current"), "{error}");
    assert!(error.contains("ceiling"), "{error}");
    assert!(error.contains(&format!("{bay_ceiling}")), "{error}");
    assert_eq!(f.bay(dev).settings, before);

    let below = [ceiling[0] - 1.0, ceiling[1], ceiling[2]];
    let answer = f
        .put("/api/v1/site", &json!({ "max_current": below }).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(f.site.snapshot().limit_a, below);
    let answer = f
        .put(&uri, &json!({ "max_current": bay_ceiling }).to_string())
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_site_task_answers_503() {
    // A handle whose site task is gone: its request queue has no receiver.
    let (requests, stopped) = tokio::sync::mpsc::channel(8);
    drop(stopped);
    let (_snapshots, snapshot) = tokio::sync::watch::channel(Arc::new(SiteSnapshot::default()));
    let options = HttpOptions {
        token: Some(TOKEN.to_owned()),
        ..HttpOptions::default()
    };
    let (events, _) = tokio::sync::broadcast::channel(8);
    let (app, _observer) = http::app(options, SiteHandle::new(requests, snapshot, events));
    let auth = format!("Bearer {TOKEN}");
    for (uri, body) in [
        ("/api/v1/site", r#"{"strategy":"fcfs"}"#),
        ("/api/v1/nodes/aa0000000001", r#"{"mode":"off"}"#),
    ] {
        let answer = call(&app, "PUT", uri, &[("authorization", &auth)], body).await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {}",
            answer.text
        );
        assert!(answer.error().contains("not running"), "{}", answer.text);
    }
}
