//! The HTTP adapter (SPEC section 8): the JSON API, settings by `PUT` with a bearer token,
//! sessions as JSON and CSV, `/healthz` and `/readyz`, `/metrics` for Prometheus, an OpenAPI
//! document and the dashboard, all served by the bridge itself.
//!
//! It is a driver like Home Assistant: it reads [`SiteSnapshot`]s and changes settings only
//! through [`SiteHandle::apply`], the one path every setting takes. It never holds a lock
//! across an await; the store is read over its own SQLite connection on a blocking thread.
//!
//! Without `[http] token` the API is read-only: every write answers 403.

mod api;
mod auth;
mod dashboard;
mod history;
mod metrics;
mod sessions;
mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

pub use history::{History, PowerSample, HISTORY_MINUTES};

use crate::config::Config;
use crate::handle::{SiteHandle, SiteRequest};
use crate::site::snapshot::SiteSnapshot;
use crate::store::{Store, StoreError};

/// Largest request body accepted; settings are a few hundred bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What the HTTP server needs to know.
#[derive(Clone, Debug, Default)]
pub struct HttpOptions {
    pub listen: Option<SocketAddr>,
    /// Bearer token for writes; `None` = read-only API.
    pub token: Option<String>,
    /// The SQLite store to read sessions and events from; `None` = no store in this process
    /// (the demo), and `/api/v1/sessions` answers 503.
    pub store: Option<PathBuf>,
}

/// The token `ctrl22-bridge demo` writes with: the demo is a simulation on the operator's own
/// machine, so a well-known token costs nothing and lets the dashboard's controls be tried.
pub const DEMO_TOKEN: &str = "demo";

impl HttpOptions {
    /// The demo's server: writable with [`DEMO_TOKEN`], no store.
    #[must_use]
    pub fn demo(listen: SocketAddr) -> Self {
        Self {
            listen: Some(listen),
            token: Some(DEMO_TOKEN.to_owned()),
            store: None,
        }
    }
}

impl From<&Config> for HttpOptions {
    fn from(config: &Config) -> Self {
        Self {
            listen: Some(config.http.listen),
            token: config.http.token.clone(),
            store: Some(config.storage.path.clone()),
        }
    }
}

/// The running server; dropping it stops serving.
#[derive(Debug)]
pub struct HttpServer {
    /// Where it listens (the real port when asked for port 0).
    pub addr: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Binds `options.listen` and serves the API and dashboard for `site`.
///
/// # Errors
/// When the address cannot be bound (port in use, no such interface) or is missing.
pub async fn spawn(options: HttpOptions, site: SiteHandle) -> anyhow::Result<HttpServer> {
    let listen = options.listen.context("[http] listen is not set")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("[http] listen {listen}"))?;
    let addr = listener.local_addr().context("[http] listen")?;
    let (routes, observer) = app(options, site);
    let server = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, routes).await {
            tracing::error!("HTTP server: {e}");
        }
    });
    tracing::info!("HTTP API and dashboard on http://{addr}/");
    Ok(HttpServer {
        addr,
        tasks: vec![server, observer],
    })
}

/// The routes, for [`spawn`] and for tests that call the router without a socket. Also starts
/// the task that feeds `/metrics`' histogram and the 24 h history from the snapshots.
pub fn app(options: HttpOptions, site: SiteHandle) -> (Router, tokio::task::JoinHandle<()>) {
    let (state, observer) = State::new(options, site);
    (router(state), observer)
}

fn router(state: State) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/app.js", get(dashboard::script))
        .route("/style.css", get(dashboard::style))
        .route("/favicon.svg", get(dashboard::favicon))
        .route("/api/v1/openapi.json", get(dashboard::openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::serve))
        .route("/api/v1/site", get(api::get_site).put(api::put_site))
        .route("/api/v1/nodes", get(api::get_nodes))
        .route(
            "/api/v1/nodes/{dev}",
            get(api::get_node)
                .put(api::put_node)
                .delete(api::forget_node),
        )
        .route("/api/v1/nodes/{dev}/{action}", post(api::press))
        .route("/api/v1/sessions", get(sessions::list))
        .route("/api/v1/events", get(sessions::events))
        .route("/api/v1/history", get(history::serve))
        .route("/api/v1/stream", get(sse::stream))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .with_state(state)
}

/// What every handler shares.
#[derive(Clone, Debug)]
struct State {
    site: SiteHandle,
    token: Option<auth::Token>,
    store: Option<StoreReader>,
    history: Arc<Mutex<History>>,
    metrics: Arc<metrics::Metrics>,
}

impl State {
    fn new(options: HttpOptions, site: SiteHandle) -> (Self, tokio::task::JoinHandle<()>) {
        let state = Self {
            token: options.token.map(auth::Token::new),
            store: options.store.map(StoreReader::new),
            history: Arc::new(Mutex::new(History::default())),
            metrics: Arc::new(metrics::Metrics::new(site.subscribe())),
            site,
        };
        let observer = tokio::spawn(observe(state.clone()));
        (state, observer)
    }

    /// Counts a refused request for `ctrl22_rejected_input_total{kind="http"}`.
    fn rejected(&self) {
        // A full queue drops the count rather than stalling the answer.
        let _ = self.site.try_send(SiteRequest::Rejected("http"));
    }
}

/// Feeds every new snapshot to the cycle-time histogram and the 24 h history.
async fn observe(state: State) {
    let mut snapshots = state.site.subscribe();
    loop {
        let snapshot = Arc::clone(&snapshots.borrow_and_update());
        state.metrics.observe(&snapshot);
        state
            .history
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .observe(&snapshot);
        if snapshots.changed().await.is_err() {
            return;
        }
    }
}

/// A read connection to the store, opened on first use and reopened after a failure.
#[derive(Clone, Debug)]
struct StoreReader {
    path: Arc<PathBuf>,
    conn: Arc<Mutex<Option<Store>>>,
}

impl StoreReader {
    fn new(path: PathBuf) -> Self {
        Self {
            path: Arc::new(path),
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// Runs `read` on a blocking thread: SQLite calls block, and may wait for the writer.
    async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let mut conn = this.conn.lock().unwrap_or_else(PoisonError::into_inner);
            let store = match conn.take() {
                Some(store) => store,
                None => Store::open(&this.path)?,
            };
            let result = read(&store);
            // A failed read may mean a broken connection: the next request opens a new one.
            if result.is_ok() {
                *conn = Some(store);
            }
            result
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(StoreError::Invalid {
                field: "store",
                problem: format!("the reading thread failed: {e}"),
            })
        })
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the mesh link is up and the store (if this process has one) opens.
async fn readyz(axum::extract::State(state): axum::extract::State<State>) -> Response {
    let mut problems = Vec::new();
    if !state.site.snapshot().mesh_connected {
        problems.push("mesh link down".to_owned());
    }
    if let Some(store) = &state.store {
        if let Err(e) = store.read(|_| Ok(())).await {
            problems.push(e.to_string());
        }
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        let text = format!("not ready: {}\n", problems.join("; "));
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    }
}

/// An error answer: a status and a message for people, as `{"error": "..."}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        #[derive(Serialize)]
        struct Body {
            error: String,
        }
        (
            self.status,
            Json(Body {
                error: self.message,
            }),
        )
            .into_response()
    }
}

/// The site as `GET /api/v1/site` shows it: everything but the bays, which have their own
/// resource.
fn site_json(snapshot: &SiteSnapshot) -> serde_json::Value {
    let mut value = serde_json::to_value(snapshot).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.remove("bays");
    }
    value
}
