//! `mesh avrflash` through a running bridge: when the configuration has an `http.token` and
//! the bridge answers at `http.listen`, the image is uploaded to
//! `POST /api/v1/nodes/{dev}/firmware` and the job followed in `GET /api/v1/ota`, so that the
//! bridge holds the bay's setpoints while it is flashed (a flash beside the bridge would
//! race its setpoints). `--standalone` talks to the mesh directly instead.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::cli::ToolError;
use crate::config::Config;
use crate::healthcheck;

/// One answer must come within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the job is looked at.
const POLL: Duration = Duration::from_millis(500);
/// A job that neither finishes nor moves for this long is given up on.
const STALLED: Duration = Duration::from_secs(180);

/// A running bridge's API.
#[derive(Debug)]
pub struct RunningBridge {
    addr: SocketAddr,
    token: String,
}

/// The running bridge of `config`, if it has a token and answers.
pub async fn find(config: &Config) -> Option<RunningBridge> {
    let token = config.http.token.clone()?;
    let url = healthcheck::healthz_url(config.http.listen);
    healthcheck::probe(&url, Duration::from_secs(1))
        .await
        .ok()?;
    let addr = url
        .strip_prefix("http://")?
        .strip_suffix("/healthz")?
        .parse()
        .ok()?;
    Some(RunningBridge { addr, token })
}

impl RunningBridge {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<(StatusCode, Value), ToolError> {
        let failed = |e: String| ToolError::Bridge(format!("{method} {path}: {e}"));
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(hyper::header::HOST, self.addr.to_string())
            .header(
                hyper::header::AUTHORIZATION,
                format!("Bearer {}", self.token),
            )
            .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(e.to_string()))?;
        let exchange = async {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .map_err(|e| e.to_string())?;
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            let driver = tokio::spawn(connection);
            let answer = sender
                .send_request(request)
                .await
                .map_err(|e| e.to_string());
            let answer = match answer {
                Ok(answer) => {
                    let status = answer.status();
                    let body = answer
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| e.to_string());
                    body.map(|b| (status, b.to_bytes()))
                }
                Err(e) => Err(e),
            };
            driver.abort();
            answer
        };
        let (status, body) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| failed("no answer".to_owned()))?
            .map_err(failed)?;
        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        Ok((status, value))
    }

    /// Uploads `image` (named `name`) for `dev` and follows the job to its end, printing a
    /// line whenever its state or progress changes.
    ///
    /// # Errors
    /// The bridge's refusal, a failed job, a lost connection.
    pub async fn avrflash(
        &self,
        dev: &str,
        name: &str,
        image: Vec<u8>,
        force: bool,
    ) -> Result<(), ToolError> {
        let name: String = url_safe(name);
        let path = format!("/api/v1/nodes/{dev}/firmware?name={name}&force={force}");
        let (status, answer) = self.call(Method::POST, &path, image).await?;
        if status != StatusCode::ACCEPTED {
            let why = answer["error"].as_str().unwrap_or("refused").to_owned();
            return Err(ToolError::Bridge(format!(
                "the bridge refused: {why} ({status})"
            )));
        }
        let job = answer["job"].clone();
        println!(
            "{dev} avrflash through the bridge at {}: job {job}",
            self.addr
        );
        let mut last = String::new();
        let mut moved = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let (_, jobs) = self.call(Method::GET, "/api/v1/ota", Vec::new()).await?;
            let Some(view) = jobs["jobs"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["id"] == job))
            else {
                return Err(ToolError::Bridge(format!("job {job} is gone")));
            };
            let state = view["state"].as_str().unwrap_or("?").to_owned();
            let line = match view["percent"].as_u64() {
                Some(pct) => format!("{state} {pct}%"),
                None => state.clone(),
            };
            if line != last {
                println!("{dev} {line}");
                last = line;
                moved = tokio::time::Instant::now();
            } else if moved.elapsed() > STALLED {
                return Err(ToolError::Bridge(format!("job {job} stalled: {last}")));
            }
            match state.as_str() {
                "succeeded" => {
                    println!("{dev} avrflash ok: ver {}", view["installed_version"]);
                    return Ok(());
                }
                "failed" => {
                    return Err(ToolError::Bridge(format!(
                        "job {job} failed: {}",
                        view["error"]
                    )));
                }
                _ => {}
            }
        }
    }
}

impl RunningBridge {
    /// `getpar` (`value: None`) or `setpar` of `dev` through the bridge, which sends the
    /// command and hands back the node's reply; prints it.
    ///
    /// # Errors
    /// The bridge's refusal (a sequencer-owned parameter of an enabled bay, a bay being
    /// flashed, no reply), a lost connection.
    pub async fn parameter(
        &self,
        dev: &str,
        par: &str,
        value: Option<i16>,
    ) -> Result<(), ToolError> {
        let path = format!("/api/v1/nodes/{dev}/parameters/{}", url_safe(par));
        let (method, body) = match value {
            Some(value) => (
                Method::PUT,
                serde_json::json!({ "value": value }).to_string(),
            ),
            None => (Method::GET, String::new()),
        };
        let (status, answer) = self.call(method, &path, body.into_bytes()).await?;
        if status != StatusCode::OK {
            let why = answer["error"].as_str().unwrap_or("refused").to_owned();
            return Err(ToolError::Parameter(format!(
                "the bridge refused: {why} ({status})"
            )));
        }
        match value {
            Some(_) => println!(
                "{dev} setpar {par} {} ok (through the bridge)",
                answer["value"]
            ),
            None => println!(
                "{dev} getpar {par} {} (through the bridge)",
                answer["value"]
            ),
        }
        Ok(())
    }
}

/// A file name as a query value: only the characters a firmware file name may have.
fn url_safe(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect()
}
