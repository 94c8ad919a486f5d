//! The dashboard and the OpenAPI document, compiled into the binary: no separate web server,
//! no CDN, works on a site without internet. The page is plain HTML, CSS and JavaScript with
//! no build step; it reads `/api/v1/stream` and writes through the same API as everyone else.
//!
//! The OpenAPI document is written by hand (`assets/openapi.json`): the API is small, and a
//! test checks that every route is in it, so no derive machinery is needed to keep it honest.

use axum::http::header;
use axum::response::{IntoResponse, Response};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const OPENAPI_JSON: &str = include_str!("assets/openapi.json");
const FAVICON_SVG: &str = include_str!("assets/favicon.svg");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // A new bridge version must not run with yesterday's script.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

pub(super) async fn openapi() -> Response {
    asset("application/json", OPENAPI_JSON)
}

pub(super) async fn favicon() -> Response {
    asset("image/svg+xml", FAVICON_SVG)
}
