//! The HTTP adapter (SPEC section 8): the JSON API, settings by `PUT` with a bearer token,
//! sessions as JSON and CSV, `/healthz` and `/readyz`, `/metrics` for Prometheus, an OpenAPI
//! document and the dashboard, all served by the bridge itself.
//!
//! It is a driver like Home Assistant: it reads [`SiteSnapshot`]s and changes settings only
//! through [`SiteHandle::apply_all`], the one path every setting takes. It never holds a lock
//! across an await; the store is read over its own SQLite connection on a blocking thread.
//!
//! Without `[http] token` the API is read-only: every write answers 403. With
//! `protect_reads` every read but `/healthz` and the login page needs the token or a login
//! (`POST /api/v1/login`, a session cookie).
//!
//! Outside input is bounded: connections ([`HttpOptions::max_connections`]), the time to send
//! a request head and to answer, body size, `limit=`, live streams; a loopback listener only
//! answers to loopback `Host` names. Every refusal is counted
//! (`ctrl22_rejected_input_total{kind="http..."}`) and logged, rate-limited.

mod api;
mod auth;
mod dashboard;
mod external_limit;
mod guard;
mod history;
mod login;
mod metrics;
mod ota;
mod parameters;
mod refusal;
pub(crate) mod server;
mod sessions;
mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{middleware, Json, Router};
use serde::Serialize;
use tokio::sync::Semaphore;
use tower_http::timeout::TimeoutLayer;

pub(crate) use api::body_changes;
pub use history::{History, PowerSample, HISTORY_MINUTES};

use crate::config::Config;
use crate::handle::SiteHandle;
use crate::site::snapshot::SiteSnapshot;
use crate::store::{Store, StoreError};

/// Largest request body accepted; settings are a few hundred bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// What the HTTP server needs to know.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    pub listen: Option<SocketAddr>,
    /// Bearer token for writes; `None` = read-only API.
    pub token: Option<String>,
    /// The SQLite store to read sessions and events from; `None` = no store in this process
    /// (the demo), and `/api/v1/sessions` answers 503.
    pub store: Option<PathBuf>,
    /// Reads need the token or a login too (all but `/healthz` and the login page).
    pub protect_reads: bool,
    /// Connections served at once; the next one gets a 503.
    pub max_connections: usize,
    /// The longest a handler may take to answer (408 after).
    pub request_timeout: Duration,
    /// The longest a client may take to send a request head (dropped after).
    pub header_timeout: Duration,
    /// Live streams (`/api/v1/stream`) at once; the next one gets a 503.
    pub max_sse_clients: usize,
    /// `Host` names a loopback listener accepts besides `localhost`, `127.0.0.1` and `[::1]`.
    pub allowed_hosts: Vec<String>,
    /// The power sources' counters for `/metrics`; `None` = no sources in this process.
    pub solar: Option<crate::solar::Health>,
    /// The OCPP sessions' counters for `/metrics`; `None` = OCPP off.
    pub ocpp: Option<crate::ocpp::OcppMetrics>,
    /// What the site task handed to the mesh link, for `/metrics`; `None` = no link here.
    pub link: Option<crate::mesh::LinkTraffic>,
    /// `[firmware]`: the folder installs name images in, the largest image.
    pub firmware: crate::config::FirmwareConfig,
}

impl Default for HttpOptions {
    /// The configuration's defaults (`[http]` with nothing set), without a listener or store.
    fn default() -> Self {
        Self {
            listen: None,
            store: None,
            ..Self::from(&crate::config::HttpConfig::default())
        }
    }
}

impl From<&crate::config::HttpConfig> for HttpOptions {
    fn from(http: &crate::config::HttpConfig) -> Self {
        Self {
            listen: Some(http.listen),
            token: http.token.clone(),
            store: None,
            protect_reads: http.protect_reads,
            max_connections: http.max_connections,
            request_timeout: http.request_timeout,
            header_timeout: http.header_timeout,
            max_sse_clients: http.max_sse_clients,
            allowed_hosts: http.allowed_hosts.clone(),
            solar: None,
            ocpp: None,
            link: None,
            firmware: crate::config::FirmwareConfig::default(),
        }
    }
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
            ..Self::default()
        }
    }
}

impl From<&Config> for HttpOptions {
    fn from(config: &Config) -> Self {
        Self {
            store: Some(config.storage.path.clone()),
            firmware: config.firmware.clone(),
            ..Self::from(&config.http)
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
    if options.protect_reads && options.token.is_none() {
        anyhow::bail!("http.protect_reads needs http.token: nobody could read or log in");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("[http] listen {listen}"))?;
    let addr = listener.local_addr().context("[http] listen")?;
    let limits = server::Limits {
        // Zero would refuse everything; one connection is the least that works.
        max_connections: options.max_connections.max(1),
        header_timeout: options.header_timeout,
    };
    let (state, observer) = State::new(options, site);
    let refusals = Arc::clone(&state.refusals);
    let routes = router(state);
    let server = tokio::spawn(server::serve(listener, routes, limits, refusals));
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
    let request_timeout = state.request_timeout;
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
        .route("/api/v1/site/external_limit", put(external_limit::put_site))
        .route(
            "/api/v1/circuits/{id}/external_limit",
            put(external_limit::put_circuit),
        )
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
        .route("/api/v1/auth", get(login::status))
        .route("/api/v1/login", post(login::login))
        .route("/api/v1/logout", post(login::logout))
        .merge(ota::routes(state.firmware.max_image_bytes))
        .merge(parameters::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such resource") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        // Covers reading the body too; a live stream's body is not a wait for the answer.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), guard::guard))
        .with_state(state)
}

/// What every handler shares.
#[derive(Clone, Debug)]
struct State {
    site: SiteHandle,
    access: Arc<auth::Access>,
    store: Option<StoreReader>,
    history: Arc<Mutex<History>>,
    metrics: Arc<metrics::Metrics>,
    refusals: Arc<refusal::Refusals>,
    /// `Some` while the listener is on loopback.
    hosts: Option<Arc<guard::HostCheck>>,
    /// One permit per live stream.
    streams: Arc<Semaphore>,
    max_streams: usize,
    request_timeout: Duration,
    firmware: Arc<crate::config::FirmwareConfig>,
}

impl State {
    fn new(options: HttpOptions, site: SiteHandle) -> (Self, tokio::task::JoinHandle<()>) {
        let loopback = options.listen.is_some_and(|addr| addr.ip().is_loopback());
        let state = Self {
            access: Arc::new(auth::Access::new(options.token, options.protect_reads)),
            store: options.store.map(StoreReader::new),
            history: Arc::new(Mutex::new(History::default())),
            metrics: Arc::new(metrics::Metrics::new(
                site.subscribe(),
                options.solar,
                options.ocpp,
                options.link,
            )),
            refusals: Arc::new(refusal::Refusals::new(site.clone())),
            hosts: loopback.then(|| Arc::new(guard::HostCheck::new(&options.allowed_hosts))),
            streams: Arc::new(Semaphore::new(options.max_sse_clients)),
            max_streams: options.max_sse_clients,
            request_timeout: options.request_timeout,
            firmware: Arc::new(options.firmware),
            site,
        };
        let observer = tokio::spawn(observe(state.clone()));
        (state, observer)
    }

    /// Counts and logs a refused request (`ctrl22_rejected_input_total{kind="http"}`).
    fn refused(&self, error: &ApiError) {
        self.refusals.refuse("http", &error.message);
    }
}

/// Feeds every new snapshot to the cycle-time histogram and the 24 h history.
async fn observe(state: State) {
    let mut snapshots = state.site.subscribe();
    // Snapshots come between cycles too (settings, allocations a change asked for): each
    // cycle's time is observed once.
    let mut observed_cycle = None;
    loop {
        let snapshot = Arc::clone(&snapshots.borrow_and_update());
        if observed_cycle != Some(snapshot.traffic.cycle_allocations) {
            observed_cycle = Some(snapshot.traffic.cycle_allocations);
            state.metrics.observe(&snapshot);
        }
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
