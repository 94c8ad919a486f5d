//! The mesh tools through a running bridge: when the configuration has an `http.token` and
//! the bridge answers at `http.listen`, `avrflash` uploads the image to
//! `POST /api/v1/nodes/{dev}/firmware` and follows the job in `GET /api/v1/ota`, so that the
//! bridge holds the bay's setpoints while it is flashed (a flash beside the bridge would
//! race its setpoints); `upgrade` asks for the ESP32 image of the firmware folder the same
//! way (`POST /api/v1/firmware/esp32` for every bay of the board), `cancel` ends a job
//! (`DELETE /api/v1/ota/{job}`), `tree` reads the bridge's fleet (`GET /api/v1/nodes`).
//! `--standalone` talks to the mesh directly instead.

use std::net::SocketAddr;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use super::cli::ToolError;
use super::progress::Progress;
use super::tree::{self, TreeNode};
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
        self.call_as(method, path, "application/octet-stream", body)
            .await
    }

    async fn call_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<(StatusCode, Value), ToolError> {
        self.call_as(
            method,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
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
            .header(hyper::header::CONTENT_TYPE, content_type)
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
            "{dev} avrflash through the bridge at {}: job {job} (ctrl22-bridge mesh cancel {job})",
            self.addr
        );
        let view = self.follow(dev, &job).await?;
        println!("{dev} avrflash ok: ver {}", view["installed_version"]);
        Ok(())
    }

    /// ESP32 firmware `image` (`demesh_<board>_<M>_<m>.bin` of the bridge's folder) for
    /// `dev`, or for every bay of the image's board (`None`); follows the job to its end.
    ///
    /// # Errors
    /// The bridge's refusal (no such image, no bay of that board, a bay charging), a failed
    /// or cancelled job, a lost connection.
    pub async fn upgrade(&self, dev: Option<&str>, image: &str) -> Result<(), ToolError> {
        let body = serde_json::json!({ "image": image });
        let path = match dev {
            Some(dev) => format!("/api/v1/nodes/{dev}/firmware"),
            None => "/api/v1/firmware/esp32".to_owned(),
        };
        let (status, answer) = self.call_json(Method::POST, &path, &body).await?;
        if status != StatusCode::ACCEPTED && status != StatusCode::OK {
            let why = answer["error"].as_str().unwrap_or("refused").to_owned();
            return Err(ToolError::Bridge(format!(
                "the bridge refused {image}: {why} ({status})"
            )));
        }
        let label = dev.unwrap_or("every bay");
        let job = answer["job"].clone();
        if job.is_null() {
            println!(
                "{label} upgrade to {image} accepted by the bridge at {}",
                self.addr
            );
            return Ok(());
        }
        println!(
            "{label} upgrade to {image} through the bridge at {}: job {job} (ctrl22-bridge mesh cancel {job})",
            self.addr
        );
        self.follow(label, &job).await?;
        println!("{label} upgrade ok: {image}");
        Ok(())
    }

    /// Cancels job `job`: the bridge's `DELETE /api/v1/ota/{job}`.
    ///
    /// # Errors
    /// No such job (404), a job already finished (409), a lost connection.
    pub async fn cancel(&self, job: u64) -> Result<(), ToolError> {
        let path = format!("/api/v1/ota/{job}");
        let (status, answer) = self.call(Method::DELETE, &path, Vec::new()).await?;
        let why = || answer["error"].as_str().unwrap_or("").to_owned();
        match status {
            StatusCode::OK | StatusCode::ACCEPTED | StatusCode::NO_CONTENT => {
                println!("job {job} cancelled");
                Ok(())
            }
            StatusCode::NOT_FOUND => Err(ToolError::Bridge(format!("no job {job}: {}", why()))),
            StatusCode::CONFLICT => Err(ToolError::Bridge(format!(
                "job {job} is already over: {}",
                why()
            ))),
            other => Err(ToolError::Bridge(format!(
                "cancel of job {job} refused: {} ({other})",
                why()
            ))),
        }
    }

    /// The bridge's fleet as tree nodes (`GET /api/v1/nodes`).
    ///
    /// # Errors
    /// An answer other than 200, a lost connection.
    pub async fn fleet(&self) -> Result<Vec<TreeNode>, ToolError> {
        let (status, bays) = self.call(Method::GET, "/api/v1/nodes", Vec::new()).await?;
        if status != StatusCode::OK {
            return Err(ToolError::Bridge(format!("GET /api/v1/nodes: {status}")));
        }
        Ok(tree::from_snapshot(&bays))
    }

    /// Polls `GET /api/v1/ota` until job `job` ends, showing its progress; its last view.
    async fn follow(&self, label: &str, job: &Value) -> Result<Value, ToolError> {
        let mut progress = Progress::new(label);
        let mut last = String::new();
        let mut moved = tokio::time::Instant::now();
        let outcome = loop {
            tokio::time::sleep(POLL).await;
            let jobs = match self.call(Method::GET, "/api/v1/ota", Vec::new()).await {
                Ok((_, jobs)) => jobs,
                Err(e) => break Err(e),
            };
            let Some(view) = jobs["jobs"]
                .as_array()
                .and_then(|jobs| jobs.iter().find(|j| j["id"] == *job))
                .cloned()
            else {
                break Err(ToolError::Bridge(format!("job {job} is gone")));
            };
            let state = view["state"].as_str().unwrap_or("?").to_owned();
            // `progress_pct` in the jobs of both firmwares; `percent` in older bridges.
            let pct = view["progress_pct"]
                .as_u64()
                .or_else(|| view["percent"].as_u64());
            match pct {
                Some(pct) => progress.set(&state, pct, 100),
                None => progress.state(&state),
            }
            let line = format!("{state} {pct:?}");
            if line != last {
                last = line;
                moved = tokio::time::Instant::now();
            } else if moved.elapsed() > STALLED {
                break Err(ToolError::Bridge(format!("job {job} stalled: {state}")));
            }
            match state.as_str() {
                "succeeded" => break Ok(view),
                "failed" => {
                    break Err(ToolError::Bridge(format!(
                        "job {job} failed: {}",
                        view["error"]
                    )))
                }
                "cancelled" | "canceled" => {
                    break Err(ToolError::Bridge(format!("job {job} was cancelled")))
                }
                _ => {}
            }
        };
        progress.finish();
        outcome
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
