//! What the harness reads from the outside: a counting MQTT subscriber (also reading
//! Mosquitto's `$SYS` counters), a process's CPU time and memory from `/proc`, and the
//! bridge's Prometheus `/metrics`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::Packet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::wire;

/// A `$SYS` counter's value and when it arrived: Mosquitto updates them once per
/// `sys_interval`, so rates over them must use these times, not the reader's.
#[derive(Clone, Copy, Debug)]
pub struct SysValue {
    pub value: u64,
    pub at: Instant,
}

/// An MQTT subscriber that counts every PUBLISH it receives and keeps the last numeric value
/// of each `$SYS` topic.
#[derive(Debug)]
pub struct Subscriber {
    received: Arc<AtomicU64>,
    sys_messages: Arc<AtomicU64>,
    sys: Arc<Mutex<HashMap<String, SysValue>>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Subscriber {
    /// Connects as `client_id` and subscribes to `filters`.
    ///
    /// # Errors
    /// When the broker refuses the connection or a subscription.
    pub async fn start(broker: &str, client_id: &str, filters: &[&str]) -> anyhow::Result<Self> {
        let wire::Session { mut reader, writer } =
            wire::connect(broker, client_id, filters).await?;
        let received = Arc::new(AtomicU64::new(0));
        let sys = Arc::new(Mutex::new(HashMap::new()));
        let sys_messages = Arc::new(AtomicU64::new(0));
        let (count, values) = (Arc::clone(&received), Arc::clone(&sys));
        let sys_count = Arc::clone(&sys_messages);
        let task = tokio::spawn(async move {
            let _writer = writer;
            loop {
                let Packet::Publish(publish) = reader.next().await? else {
                    continue;
                };
                if publish.topic.starts_with("$SYS/") {
                    let value = std::str::from_utf8(&publish.payload)
                        .ok()
                        .and_then(|text| text.trim().parse::<f64>().ok());
                    if let (Some(value), Ok(mut sys)) = (value, values.lock()) {
                        let at = Instant::now();
                        sys.insert(
                            publish.topic.clone(),
                            SysValue {
                                value: value as u64,
                                at,
                            },
                        );
                    }
                    sys_count.fetch_add(1, Ordering::Relaxed);
                } else {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Self {
            received,
            sys_messages,
            sys,
            task,
        })
    }

    /// PUBLISH packets received so far, `$SYS` ones apart.
    #[must_use]
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// `$SYS` PUBLISH packets received so far.
    #[must_use]
    pub fn sys_messages(&self) -> u64 {
        self.sys_messages.load(Ordering::Relaxed)
    }

    /// The last value of `$SYS/broker/<name>`, `None` before the broker published it.
    #[must_use]
    pub fn sys(&self, name: &str) -> Option<SysValue> {
        self.sys
            .lock()
            .ok()
            .and_then(|sys| sys.get(&format!("$SYS/broker/{name}")).copied())
    }
}

/// CPU time (user + system) and memory of one process.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcSample {
    pub cpu_s: f64,
    pub rss_kib: u64,
    /// Peak resident set (`VmHWM`).
    pub peak_rss_kib: u64,
}

/// Clock ticks per second of `/proc/PID/stat`'s times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
///
/// # Errors
/// When the process is gone or the files do not read as expected.
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    // Fields after the command name (which may hold spaces) start at field 3, `state`.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |field: usize| fields.get(field - 3).and_then(|f| f.parse::<u64>().ok());
    let (Some(utime), Some(stime)) = (ticks(14), ticks(15)) else {
        anyhow::bail!("/proc/{pid}/stat: no utime/stime");
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(ProcSample {
        cpu_s: (utime + stime) as f64 / clock_ticks(),
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

/// `GET /metrics` from the bridge at `addr` (HOST:PORT), the Prometheus text.
///
/// # Errors
/// When the bridge does not answer within 5 s.
pub async fn metrics(addr: &str) -> anyhow::Result<String> {
    let fetch = async {
        let mut stream = TcpStream::connect(addr).await?;
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        anyhow::Ok(String::from_utf8_lossy(&response).into_owned())
    };
    let response = tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .context("GET /metrics timed out")??;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    anyhow::ensure!(head.starts_with("HTTP/1.1 200"), "GET /metrics: {head}");
    Ok(body.to_owned())
}

/// The value of the sample `name` (with its labels, exactly as printed) in Prometheus text.
#[must_use]
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse().ok()).flatten()
        })
}

/// The heartbeats the bridge counted, if its `/metrics` has a per-kind mesh message counter.
#[must_use]
pub fn heartbeats_counted(text: &str) -> Option<f64> {
    ["ctrl22_mesh_messages_total", "ctrl22_mesh_messages"]
        .iter()
        .find_map(|name| metric(text, &format!("{name}{{kind=\"heartbeat\"}}")))
}

/// A histogram's cumulative buckets (`le` bound in seconds, count) and its count and sum.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl Histogram {
    /// Reads histogram `name` from Prometheus text.
    #[must_use]
    pub fn read(text: &str, name: &str) -> Self {
        let prefix = format!("{name}_bucket{{le=\"");
        let buckets = text
            .lines()
            .filter_map(|line| {
                let rest = line.strip_prefix(&prefix)?;
                let (le, rest) = rest.split_once("\"}")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, rest.trim().parse().ok()?))
            })
            .collect();
        Self {
            buckets,
            count: metric(text, &format!("{name}_count")).unwrap_or(0.0),
            sum: metric(text, &format!("{name}_sum")).unwrap_or(0.0),
        }
    }

    /// What was observed between `before` and `self`.
    #[must_use]
    pub fn since(&self, before: &Self) -> Self {
        let buckets = self
            .buckets
            .iter()
            .map(|&(le, n)| {
                let was = before
                    .buckets
                    .iter()
                    .find(|b| b.0 == le)
                    .map_or(0.0, |b| b.1);
                (le, n - was)
            })
            .collect();
        Self {
            buckets,
            count: self.count - before.count,
            sum: self.sum - before.sum,
        }
    }

    #[must_use]
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// The upper bound of the bucket holding quantile `q` (0..1).
    #[must_use]
    pub fn quantile_bound(&self, q: f64) -> Option<f64> {
        let rank = q * self.count;
        (self.count > 0.0)
            .then(|| self.buckets.iter().find(|b| b.1 >= rank).map(|b| b.0))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x\n\
        ctrl22_mesh_messages_total{kind=\"heartbeat\"} 1200\n\
        ctrl22_control_cycle_seconds_sum 0.5\n\
        ctrl22_control_cycle_seconds_count 100\n\
        ctrl22_control_cycle_seconds_bucket{le=\"0.001\"} 10\n\
        ctrl22_control_cycle_seconds_bucket{le=\"0.004\"} 95\n\
        ctrl22_control_cycle_seconds_bucket{le=\"+Inf\"} 100\n";

    #[test]
    fn reads_counters_and_histograms_from_prometheus_text() {
        assert_eq!(heartbeats_counted(TEXT), Some(1200.0));
        assert_eq!(heartbeats_counted("ctrl22_bay_online{bay=\"x\"} 1\n"), None);
        let h = Histogram::read(TEXT, "ctrl22_control_cycle_seconds");
        assert_eq!(h.mean(), Some(0.005));
        assert_eq!(h.quantile_bound(0.5), Some(0.004));
        assert_eq!(h.quantile_bound(0.99), Some(f64::INFINITY));
        let zero = h.since(&h);
        assert_eq!(zero.mean(), None);
    }
}
