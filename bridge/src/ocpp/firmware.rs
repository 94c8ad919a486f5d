//! UpdateFirmware carried out on the mesh: at `retrieveDate` the image at `location` is
//! downloaded (http/https, bounded in size and time, the backend's attempts and interval
//! within the charge point's bounds), read as an AVR image, and queued as a firmware job of
//! the site core for each bay of the charge point. The steps go back to the session as
//! FirmwareStatus values, which the charge point sends as FirmwareStatusNotification.
//!
//! Choices:
//! - A bay in a charging session is not flashed (flashing resets its controller and ends the
//!   session): its job is submitted when the session has ended, however long that takes, as
//!   OCPP expects a charge point to install when it can. A job the core refuses at its start
//!   because a car began charging meanwhile waits again the same way.
//! - Layout `single`: every bay of the site gets a job; the core's queue runs them a few at
//!   a time (`[firmware] max_parallel`). `Installing` when the first starts, `Installed`
//!   when all verified their `ver`, `InstallationFailed` if any failed.
//! - One update per charge point: a new UpdateFirmware replaces one still waiting or
//!   downloading; jobs already queued in the core run on.
//! - The core's job queue is bounded (a site with more bays than it holds): a bay it refuses
//!   as full waits like one in a session and is submitted when jobs have finished.
//! - The image's board comes from its name (`ctrl22_<board>_<ver>.hex`). A URL that names
//!   none (`https://backend/fw?id=5`) is installed only when every bay of the charge point
//!   reports one and the same board: the image is taken for that board, and with no
//!   version known the check of `ver` after flashing is skipped (logged). Otherwise the
//!   update is InstallationFailed: an image of unknown board is never flashed.
//! - The location may carry credentials (user info, a token in the query): logs show it
//!   without query and with the user info redacted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use ctrl22_ocpp::rust_ocpp::v1_6::types::FirmwareStatus;
use ctrl22_ocpp::FirmwareUpdate;
use reqwest::Url;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::bay::BayId;
use crate::config::firmware::is_plain_file_name;
use crate::config::redact;
use crate::handle::SiteHandle;
use crate::ota::folder;
use crate::ota::jobs::{AnyJobView, AvrImage, JobError, JobState, JobView, Refusal};
use crate::site::{BayEvent, BayEventKind};

/// One download attempt at most this long, connecting included.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// Steps waiting for the session (it drains them at once; a handful per update).
const STEPS_QUEUED: usize = 16;
/// The image's name when the URL's last segment is not a plain file name.
const UNNAMED_IMAGE: &str = "ocpp-download";

/// What an update needs besides the request.
#[derive(Clone, Debug)]
pub struct FirmwareContext {
    pub identity: String,
    pub handle: SiteHandle,
    /// The charge point's bays (connector order).
    pub bays: Vec<BayId>,
    /// `[firmware] max_image_bytes`: the download is cut off beyond it.
    pub max_image_bytes: usize,
}

/// The running update of one charge point, if any, and its steps for the session.
#[derive(Debug, Default)]
pub struct FirmwareUpdates {
    task: Option<JoinHandle<()>>,
    steps: Option<mpsc::Receiver<FirmwareStatus>>,
}

impl Drop for FirmwareUpdates {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl FirmwareUpdates {
    /// Starts `update`, replacing (aborting) one still running.
    pub fn start(&mut self, update: FirmwareUpdate, context: FirmwareContext) {
        if let Some(task) = self.task.take() {
            if !task.is_finished() {
                tracing::info!(
                    identity = context.identity,
                    "a new UpdateFirmware replaces the one in progress"
                );
            }
            task.abort();
        }
        let (steps_tx, steps) = mpsc::channel(STEPS_QUEUED);
        self.steps = Some(steps);
        self.task = Some(tokio::spawn(run(update, context, steps_tx)));
    }

    /// The next step of the running update; never resolves without one.
    pub async fn next_step(&mut self) -> FirmwareStatus {
        loop {
            match &mut self.steps {
                Some(steps) => match steps.recv().await {
                    Some(step) => return step,
                    // The update is over: nothing more from it.
                    None => self.steps = None,
                },
                None => std::future::pending::<()>().await,
            }
        }
    }
}

/// The location as logs may show it: no query or fragment, no user info.
fn shown(location: &str) -> String {
    let cut = location.find(['?', '#']).unwrap_or(location.len());
    redact::url(location.get(..cut).unwrap_or_default())
}

/// Why one download attempt failed.
#[derive(Debug, thiserror::Error)]
enum DownloadError {
    #[error("only http and https locations can be downloaded, not {0}")]
    Scheme(String),
    #[error("the location is not a URL")]
    BadUrl,
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("the image is larger than [firmware] max_image_bytes ({0})")]
    TooLarge(usize),
    #[error("{0}")]
    Transport(String),
}

impl DownloadError {
    /// Another attempt could go differently.
    fn is_transient(&self) -> bool {
        matches!(self, Self::Status(_) | Self::Transport(_))
    }
}

fn transport(e: reqwest::Error) -> DownloadError {
    // Without the URL: it may hold credentials.
    DownloadError::Transport(e.without_url().to_string())
}

async fn download(
    client: &reqwest::Client,
    url: &Url,
    max_bytes: usize,
) -> Result<Vec<u8>, DownloadError> {
    let mut response = client.get(url.clone()).send().await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status(status));
    }
    if response
        .content_length()
        .is_some_and(|len| usize::try_from(len).map_or(true, |len| len > max_bytes))
    {
        return Err(DownloadError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if body.len().saturating_add(chunk.len()) > max_bytes {
            return Err(DownloadError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The image's name: the URL's last path segment when it is a plain file name (then
/// `ctrl22_<board>_<ver>.hex` gives the board and version checks), else unnamed.
fn image_name(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut segments| segments.next_back())
        .filter(|name| is_plain_file_name(name))
        .unwrap_or(UNNAMED_IMAGE)
        .to_owned()
}

/// Sends one step to the session; false when the session is gone.
async fn step(steps: &mpsc::Sender<FirmwareStatus>, status: FirmwareStatus) -> bool {
    steps.send(status).await.is_ok()
}

async fn run(
    update: FirmwareUpdate,
    context: FirmwareContext,
    steps: mpsc::Sender<FirmwareStatus>,
) {
    let identity = context.identity.as_str();
    let location = shown(&update.location);
    let wait_ms = update
        .retrieve_wall_ms
        .saturating_sub(crate::clock::wall_ms());
    tracing::info!(
        identity,
        location,
        wait_s = wait_ms / 1000,
        attempts = update.attempts,
        "UpdateFirmware accepted"
    );
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let Some(bytes) = download_with_attempts(&update, &context, &location, &steps).await else {
        return;
    };
    if !step(&steps, FirmwareStatus::Downloaded).await {
        return;
    }
    let name =
        Url::parse(&update.location).map_or_else(|_| UNNAMED_IMAGE.to_owned(), |u| image_name(&u));
    let image = folder::avr_image(&name, &bytes, context.max_image_bytes)
        .map_err(|e| e.to_string())
        .and_then(|image| with_board(image, &context));
    let image = match image {
        Ok(image) => image,
        Err(e) => {
            tracing::warn!(identity, location, "firmware not installed: {e}");
            step(&steps, FirmwareStatus::InstallationFailed).await;
            return;
        }
    };
    tracing::info!(
        identity,
        image = image.name,
        bytes = image.bytes.len(),
        version = image.version,
        "firmware downloaded"
    );
    let installed = install(&context, &image, &steps).await;
    match installed {
        Some(true) => {
            step(&steps, FirmwareStatus::Installed).await;
        }
        Some(false) => {
            step(&steps, FirmwareStatus::InstallationFailed).await;
        }
        None => {}
    }
}

/// The image with its board: its own (from its name), else the one board every bay of the
/// charge point reports; the reason when there is none.
fn with_board(mut image: AvrImage, context: &FirmwareContext) -> Result<AvrImage, String> {
    if image.board.is_some() {
        return Ok(image);
    }
    let snapshot = context.handle.snapshot();
    let boards = context.bays.iter().map(|bay| {
        snapshot
            .bays
            .iter()
            .find(|b| b.dev == bay.0)
            .and_then(|b| b.board.as_deref())
    });
    let board = common_board(boards)
        .map_err(|why| format!("the image's name ({}) gives no board and {why}", image.name))?;
    tracing::info!(
        identity = context.identity,
        image = image.name,
        board,
        "the image's name gives no board: taken for the one board of the bays; \
         its version is unknown, so ver is not checked after flashing"
    );
    image.board = Some(board);
    Ok(image)
}

/// The one board all of `boards` are (a bay reporting none counts against it).
fn common_board<'a>(
    mut boards: impl Iterator<Item = Option<&'a str>>,
) -> Result<String, &'static str> {
    let first = boards
        .next()
        .ok_or("the charge point has no bays")?
        .ok_or("a bay reports no board")?;
    for board in boards {
        match board {
            None => return Err("a bay reports no board"),
            Some(board) if board != first => return Err("the bays are of different boards"),
            Some(_) => {}
        }
    }
    Ok(first.to_owned())
}

/// Downloading (once per attempt), then the image, or DownloadFailed and `None`.
async fn download_with_attempts(
    update: &FirmwareUpdate,
    context: &FirmwareContext,
    location: &str,
    steps: &mpsc::Sender<FirmwareStatus>,
) -> Option<Vec<u8>> {
    let identity = context.identity.as_str();
    let prepared = prepare(&update.location);
    for attempt in 1..=update.attempts {
        if !step(steps, FirmwareStatus::Downloading).await {
            return None;
        }
        let result = match &prepared {
            Ok((client, url)) => download(client, url, context.max_image_bytes).await,
            Err(e) => Err(DownloadError::Transport(e.to_string())),
        };
        match result {
            Ok(bytes) => return Some(bytes),
            Err(e) => {
                tracing::warn!(identity, location, attempt, "firmware download failed: {e}");
                if prepared.is_err() || !e.is_transient() || attempt == update.attempts {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(u64::from(update.retry_interval_s))).await;
            }
        }
    }
    step(steps, FirmwareStatus::DownloadFailed).await;
    None
}

/// The client and the URL of a download, when it can be one.
fn prepare(location: &str) -> Result<(reqwest::Client, Url), DownloadError> {
    let url = Url::parse(location).map_err(|_| DownloadError::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DownloadError::Scheme(url.scheme().to_owned()));
    }
    let client = reqwest::Client::builder()
        .timeout(DOWNLOAD_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .map_err(transport)?;
    Ok((client, url))
}

/// The jobs of one update: waiting bays, submitted ones, whether Installing went out.
struct Install<'a> {
    context: &'a FirmwareContext,
    steps: &'a mpsc::Sender<FirmwareStatus>,
    waiting: Vec<BayId>,
    jobs: BTreeMap<u64, BayId>,
    failed: bool,
    installing_sent: bool,
    told_waiting: bool,
}

impl Install<'_> {
    /// Submits the waiting bays that are not in a session; `None` when the site is gone.
    async fn submit_free(&mut self, image: &AvrImage) -> Option<()> {
        let snapshot = self.context.handle.snapshot();
        let in_session = |bay: &BayId| {
            snapshot
                .bays
                .iter()
                .any(|b| b.dev == bay.0 && b.session_started_ms.is_some())
        };
        let mut still = Vec::new();
        let mut queue_full = false;
        for bay in std::mem::take(&mut self.waiting) {
            if queue_full || in_session(&bay) {
                still.push(bay);
                continue;
            }
            match self
                .context
                .handle
                .install_firmware(bay.clone(), image.clone(), false)
                .await?
            {
                Ok(job) => {
                    self.jobs.insert(job, bay);
                }
                Err(Refusal::InSession) => still.push(bay),
                // The core's queue is full: the rest wait for jobs to finish.
                Err(Refusal::QueueFull) => {
                    queue_full = true;
                    still.push(bay);
                }
                Err(refusal) => {
                    tracing::warn!(
                        identity = self.context.identity,
                        %bay,
                        "firmware install refused: {refusal}"
                    );
                    self.failed = true;
                }
            }
        }
        if !still.is_empty() && !self.told_waiting {
            tracing::info!(
                identity = self.context.identity,
                bays = still.len(),
                "firmware install waits for charging sessions to end or queued jobs to finish"
            );
            self.told_waiting = true;
        }
        self.waiting = still;
        Some(())
    }

    /// After missed events: a job of ours the core no longer lists was retired (it keeps
    /// only the latest finished ones) before we saw how it ended, so it cannot be counted
    /// as installed.
    fn forget_unlisted(&mut self, listed: &BTreeSet<u64>) {
        let identity = self.context.identity.as_str();
        let before = self.jobs.len();
        self.jobs.retain(|id, bay| {
            let kept = listed.contains(id);
            if !kept {
                tracing::warn!(
                    identity,
                    %bay,
                    job = id,
                    "firmware job ended unseen (events missed): counted as failed"
                );
            }
            kept
        });
        self.failed |= self.jobs.len() < before;
    }

    async fn installing(&mut self) -> bool {
        if self.installing_sent {
            return true;
        }
        self.installing_sent = true;
        step(self.steps, FirmwareStatus::Installing).await
    }

    /// A job of ours changed; false when the session is gone.
    async fn on_job(&mut self, job: &JobView) -> bool {
        let Some(bay) = self.jobs.get(&job.id).cloned() else {
            return true;
        };
        let identity = self.context.identity.as_str();
        match &job.state {
            JobState::Queued => true,
            JobState::Transferring { .. }
            | JobState::WaitingForBay { .. }
            | JobState::Verifying => self.installing().await,
            JobState::Succeeded { version } => {
                self.jobs.remove(&job.id);
                tracing::info!(identity, %bay, version, "firmware installed");
                self.installing().await
            }
            JobState::Failed {
                error: JobError::Refused(Refusal::InSession),
            } => {
                // A car began charging before the job started: wait for it again.
                self.jobs.remove(&job.id);
                self.waiting.push(bay);
                true
            }
            JobState::Failed { error } => {
                self.jobs.remove(&job.id);
                tracing::warn!(identity, %bay, "firmware installation failed: {error}");
                self.failed = true;
                true
            }
        }
    }
}

/// Runs the jobs of every bay; `Some(true)` when all verified, `None` when the session or
/// the site is gone.
async fn install(
    context: &FirmwareContext,
    image: &AvrImage,
    steps: &mpsc::Sender<FirmwareStatus>,
) -> Option<bool> {
    // Subscribed before the first submit: no event of our jobs is missed.
    let mut events = context.handle.subscribe_events();
    let mut snapshots = context.handle.subscribe();
    let mut install = Install {
        context,
        steps,
        waiting: context.bays.clone(),
        jobs: BTreeMap::new(),
        failed: false,
        installing_sent: false,
        told_waiting: false,
    };
    loop {
        install.submit_free(image).await?;
        if install.waiting.is_empty() && install.jobs.is_empty() {
            return Some(!install.failed);
        }
        let waiting = !install.waiting.is_empty();
        tokio::select! {
            event = events.recv() => match event {
                Ok(BayEvent { kind: BayEventKind::Firmware { job }, .. }) => {
                    if !install.on_job(&job).await {
                        return None;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: the jobs as the core has them now.
                    // Only controller jobs are ours: UpdateFirmware installs AVR images.
                    let mut listed = BTreeSet::new();
                    for job in context.handle.firmware_jobs().await? {
                        let AnyJobView::Avr(job) = job else { continue };
                        listed.insert(job.id);
                        if !install.on_job(&job).await {
                            return None;
                        }
                    }
                    install.forget_unlisted(&listed);
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            changed = snapshots.changed(), if waiting => changed.ok()?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_locations_hold_no_credentials() {
        assert_eq!(
            shown("https://user:secret@fw.example/a/ctrl22_agccs12_15.hex?token=abc"),
            "https://<redacted>@fw.example/a/ctrl22_agccs12_15.hex"
        );
        assert_eq!(shown("http://h/x#frag"), "http://h/x");
    }

    #[test]
    fn only_http_and_https_are_downloaded() {
        assert!(prepare("http://127.0.0.1:1/x.hex").is_ok());
        assert!(matches!(prepare("ftp://h/x.hex"), Err(DownloadError::Scheme(s)) if s == "ftp"));
        assert!(matches!(prepare("urn:x"), Err(DownloadError::Scheme(_))));
        assert!(matches!(prepare("http://"), Err(DownloadError::BadUrl)));
    }

    #[test]
    fn an_unnamed_image_needs_one_board_for_all_bays() {
        assert_eq!(
            common_board([Some("agccs12"), Some("agccs12")].into_iter()),
            Ok("agccs12".to_owned())
        );
        assert_eq!(
            common_board([Some("agccs12"), Some("m5stick")].into_iter()),
            Err("the bays are of different boards")
        );
        assert_eq!(
            common_board([Some("agccs12"), None].into_iter()),
            Err("a bay reports no board")
        );
        assert_eq!(
            common_board([None].into_iter()),
            Err("a bay reports no board")
        );
        assert!(common_board(std::iter::empty()).is_err());
    }

    /// The site side of the handle, scripted: each Install answered by `answer(n)` (the
    /// n-th install), each job then reported Succeeded at once; with `retire` two events
    /// of another job follow, so a receiver holding two loses the Succeeded (lags), and the
    /// job list no longer has the job. A new snapshot after every request, as each cycle
    /// publishes one.
    fn scripted_site(
        answer: fn(u64) -> Result<u64, Refusal>,
        retire: bool,
    ) -> (SiteHandle, tokio::task::JoinHandle<Vec<BayId>>) {
        use crate::handle::FirmwareRequest;
        use crate::handle::SiteRequest;
        let (requests, mut site) = mpsc::channel(8);
        let (snapshot_tx, snapshot) = tokio::sync::watch::channel(std::sync::Arc::default());
        let (events, _) = broadcast::channel(2);
        let handle = SiteHandle::new(requests, snapshot, events.clone());
        let task = tokio::spawn(async move {
            let mut submitted = Vec::new();
            let mut installs = 0;
            while let Some(request) = site.recv().await {
                match request {
                    SiteRequest::Firmware(FirmwareRequest::Install { bay, reply, .. }) => {
                        installs += 1;
                        let answer = answer(installs);
                        let _ = reply.send(answer.clone());
                        let Ok(id) = answer else { continue };
                        submitted.push(bay.clone());
                        let state = JobState::Succeeded { version: 15 };
                        let job = JobView {
                            id,
                            bay: bay.clone(),
                            image: "ctrl22_agccs12_15.hex".into(),
                            version: Some(15),
                            forced: false,
                            state,
                            percent: None,
                            progress_pct: 100,
                        };
                        let other = JobView {
                            id: 999,
                            state: JobState::Queued,
                            ..job.clone()
                        };
                        let mut jobs = vec![job];
                        if retire {
                            jobs.extend([other.clone(), other]);
                        }
                        for job in jobs {
                            let event = BayEvent {
                                bay: bay.clone(),
                                at_ms: 0,
                                kind: BayEventKind::Firmware { job },
                            };
                            let _ = events.send(event);
                        }
                    }
                    SiteRequest::Firmware(FirmwareRequest::Jobs { reply }) => {
                        let _ = reply.send(Vec::new());
                    }
                    _ => {}
                }
                snapshot_tx.send_replace(std::sync::Arc::default());
            }
            submitted
        });
        (handle, task)
    }

    fn context(handle: SiteHandle, bays: usize) -> FirmwareContext {
        FirmwareContext {
            identity: "cp".into(),
            handle,
            bays: (1..=bays).map(|n| BayId(format!("bay{n}"))).collect(),
            max_image_bytes: 1024,
        }
    }

    fn image() -> AvrImage {
        AvrImage {
            name: "ctrl22_agccs12_15.hex".into(),
            bytes: vec![1, 2, 3],
            version: Some(15),
            board: Some("agccs12".into()),
        }
    }

    #[tokio::test]
    async fn a_full_job_queue_makes_bays_wait_not_fail() {
        // The core's queue is full at the second and third submit, free again after.
        let (handle, site) = scripted_site(
            |n| match n {
                2 | 3 => Err(Refusal::QueueFull),
                n => Ok(n),
            },
            false,
        );
        let context = context(handle, 3);
        let (steps, mut sent) = mpsc::channel(STEPS_QUEUED);
        let installed =
            tokio::time::timeout(Duration::from_secs(5), install(&context, &image(), &steps))
                .await
                .expect("the install ends");
        assert_eq!(installed, Some(true));
        assert_eq!(sent.recv().await, Some(FirmwareStatus::Installing));
        drop(context);
        let submitted = site.await.expect("the site task");
        assert_eq!(submitted.len(), 3, "every bay flashed: {submitted:?}");
    }

    #[tokio::test]
    async fn a_job_retired_while_events_lagged_counts_as_failed() {
        let (handle, site) = scripted_site(Ok, true);
        let context = context(handle, 1);
        let (steps, _sent) = mpsc::channel(STEPS_QUEUED);
        let installed =
            tokio::time::timeout(Duration::from_secs(5), install(&context, &image(), &steps))
                .await
                .expect("the install ends, it does not wait for a job it cannot see");
        assert_eq!(installed, Some(false));
        drop(context);
        site.await.expect("the site task");
    }

    #[test]
    fn the_image_is_named_by_the_url_when_it_can_be() {
        let name = |u: &str| image_name(&Url::parse(u).expect("a URL"));
        assert_eq!(
            name("http://127.0.0.1:1/fw/ctrl22_agccs12_15.hex?x=1"),
            "ctrl22_agccs12_15.hex"
        );
        assert_eq!(name("http://127.0.0.1:1/"), UNNAMED_IMAGE);
        assert_eq!(name("http://h/a%20b.hex"), UNNAMED_IMAGE);
    }
}
