//! `/metrics`: the site in the Prometheus/OpenMetrics text format.
//!
//! Almost everything is read from the latest snapshot at scrape time (a collector), so the
//! numbers are never older than the last control cycle and there is no second copy of the
//! state to keep in step; the core's own counters (messages by kind, setpoint writes,
//! allocations) come with it. Live: the control cycle duration, fed with each new
//! snapshot's `cycle_us`, and what the site task handed to the mesh link (commands by `cmd`,
//! the event -> write latency), read from [`LinkTraffic`].

use std::sync::Arc;

use axum::extract::State as Extract;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::sync::watch;

use super::State;
use crate::mesh::LinkTraffic;
use crate::site::snapshot::SiteSnapshot;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PHASES: [&str; 3] = ["L1", "L2", "L3"];

/// The registry behind `/metrics`.
#[derive(Debug)]
pub(super) struct Metrics {
    registry: Registry,
    cycle_seconds: Histogram,
}

impl Metrics {
    pub(super) fn new(
        snapshots: watch::Receiver<Arc<SiteSnapshot>>,
        solar: Option<crate::solar::Health>,
        ocpp: Option<crate::ocpp::OcppMetrics>,
        link: Option<LinkTraffic>,
    ) -> Self {
        let mut registry = Registry::default();
        // 10 us to 2.6 s: an allocation takes microseconds; seconds would mean trouble.
        let cycle_seconds = Histogram::new(exponential_buckets(1e-5, 4.0, 10));
        registry.register(
            "ctrl22_control_cycle_seconds",
            "Time the site core took for one allocation",
            cycle_seconds.clone(),
        );
        registry.register_collector(Box::new(SnapshotCollector(snapshots)));
        registry.register_collector(Box::new(crate::ota::server::ServerMetrics));
        if let Some(solar) = solar {
            registry.register_collector(Box::new(solar));
        }
        if let Some(ocpp) = ocpp {
            registry.register_collector(Box::new(ocpp));
        }
        if let Some(link) = link {
            registry.register(
                "ctrl22_event_to_write_seconds",
                "From a change that asked for an allocation to the last setpoint write of that \
                 allocation handed to the mesh link",
                link.event_to_write(),
            );
            registry.register_collector(Box::new(CommandCollector(link)));
        }
        Self {
            registry,
            cycle_seconds,
        }
    }

    /// Records a new snapshot's cycle time.
    pub(super) fn observe(&self, snapshot: &SiteSnapshot) {
        // Microseconds well below 2^52 convert exactly.
        #[allow(clippy::cast_precision_loss)]
        self.cycle_seconds.observe(snapshot.cycle_us as f64 / 1e6);
    }

    fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// `GET /metrics`.
pub(super) async fn serve(Extract(state): Extract<State>) -> Response {
    match state.metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Debug)]
struct SnapshotCollector(watch::Receiver<Arc<SiteSnapshot>>);

/// Gauges or counters of one name, one value per label set.
struct Family<'a> {
    name: &'a str,
    help: &'a str,
    kind: MetricType,
}

impl Family<'_> {
    fn gauge<'a>(name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
        }
    }

    fn counter<'a>(name: &'a str, help: &'a str) -> Family<'a> {
        Family {
            name,
            help,
            kind: MetricType::Counter,
        }
    }

    fn write<L: EncodeLabelSet>(
        &self,
        encoder: &mut DescriptorEncoder,
        rows: impl IntoIterator<Item = (L, f64)>,
    ) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        for (labels, value) in rows {
            let encoder = metric.encode_family(&labels)?;
            match self.kind {
                MetricType::Counter => ConstCounter::new(value).encode(encoder)?,
                _ => ConstGauge::new(value).encode(encoder)?,
            }
        }
        Ok(())
    }

    /// A metric without labels; `None` writes only its description.
    fn write_one(
        &self,
        encoder: &mut DescriptorEncoder,
        value: Option<f64>,
    ) -> Result<(), std::fmt::Error> {
        let metric = encoder.encode_descriptor(self.name, self.help, None, self.kind)?;
        match (value, self.kind) {
            (Some(value), MetricType::Counter) => ConstCounter::new(value).encode(metric),
            (Some(value), _) => ConstGauge::new(value).encode(metric),
            (None, _) => Ok(()),
        }
    }
}

fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

// Watts and counts are far below 2^52: exact as f64.
#[allow(clippy::cast_precision_loss)]
fn watts(w: i64) -> f64 {
    w as f64
}

impl Collector for SnapshotCollector {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = Arc::clone(&self.0.borrow());
        let per_phase = |values: [f64; 3]| {
            PHASES
                .into_iter()
                .zip(values)
                .map(|(phase, value)| ([("phase", phase.to_owned())], value))
        };
        let per_bay = |value: fn(&crate::site::snapshot::BaySnapshot) -> f64| {
            s.bays
                .iter()
                .map(move |bay| ([("bay", bay.dev.clone())], value(bay)))
        };

        Family::gauge("ctrl22_mesh_connected", "1 while the mesh link is up")
            .write_one(&mut e, Some(flag(s.mesh_connected)))?;
        Family::gauge("ctrl22_solar_ok", "1 while the solar source reports")
            .write_one(&mut e, Some(flag(s.solar_ok)))?;
        Family::gauge("ctrl22_site_limit_amperes", "The site connection's limit")
            .write(&mut e, per_phase(s.limit_a))?;
        Family::gauge(
            "ctrl22_site_reserved_amperes",
            "Current all bays may draw, reservations included",
        )
        .write(&mut e, per_phase(s.reserved_a))?;
        Family::gauge(
            "ctrl22_site_measured_amperes",
            "Current the bays' transformers measure",
        )
        .write(&mut e, per_phase(s.measured_a))?;
        Family::gauge("ctrl22_site_ev_power_watts", "Power all bays draw")
            .write_one(&mut e, Some(watts(s.ev_power_w)))?;
        let sources = [
            ("ctrl22_site_pv_power_watts", "PV production", s.pv_power_w),
            (
                "ctrl22_site_grid_power_watts",
                "Grid power, positive = import",
                s.grid_power_w,
            ),
            (
                "ctrl22_site_battery_power_watts",
                "Battery power, positive = discharge",
                s.battery_power_w,
            ),
            (
                "ctrl22_site_surplus_watts",
                "Power available to solar charging",
                s.surplus_w,
            ),
        ];
        for (name, help, value) in sources {
            // Unknown is absent, not zero: a PromQL gap is honest, a 0 W line is not.
            Family::gauge(name, help).write_one(&mut e, value.map(watts))?;
        }
        Family::counter(
            "ctrl22_rejected_input",
            "Input refused, by kind (malformed mesh JSON, unknown nodes, HTTP requests...)",
        )
        .write(
            &mut e,
            s.rejected
                .iter()
                .map(|(kind, n)| ([("kind", kind.clone())], *n as f64)),
        )?;

        let traffic = &s.traffic;
        Family::counter(
            "ctrl22_mesh_messages",
            "Node messages received, by kind (other: tsync, avrlog)",
        )
        .write(
            &mut e,
            traffic
                .messages()
                .map(|(kind, n)| ([("kind", kind)], n as f64)),
        )?;
        Family::counter(
            "ctrl22_setpoint_writes",
            "Parameter writes the setpoint sequencer released (avrsetpar)",
        )
        .write_one(&mut e, Some(traffic.setpoint_writes as f64))?;
        Family::counter(
            "ctrl22_allocations",
            "Allocations, by trigger: the periodic control cycle or a change between cycles",
        )
        .write(
            &mut e,
            [
                ([("trigger", "cycle")], traffic.cycle_allocations as f64),
                ([("trigger", "event")], traffic.event_allocations as f64),
            ],
        )?;

        Family::gauge(
            "ctrl22_bay_current_amperes",
            "Current measured per bay phase",
        )
        .write(
            &mut e,
            s.bays.iter().flat_map(|bay| {
                PHASES
                    .into_iter()
                    .zip(bay.current_a)
                    .map(|(phase, a)| ([("bay", bay.dev.clone()), ("phase", phase.to_owned())], a))
            }),
        )?;
        Family::gauge("ctrl22_bay_power_watts", "Power the bay draws")
            .write(&mut e, per_bay(|bay| watts(bay.power_w)))?;
        Family::counter("ctrl22_bay_energy_wh", "The bay's lifetime energy")
            .write(&mut e, per_bay(|bay| bay.total_energy_wh))?;
        Family::gauge(
            "ctrl22_bay_session_energy_wh",
            "Energy of the running session",
        )
        .write(&mut e, per_bay(|bay| bay.session_energy_wh))?;
        Family::gauge("ctrl22_bay_allocated_amperes", "The allocation's target")
            .write(&mut e, per_bay(|bay| bay.allocated_a))?;
        Family::gauge(
            "ctrl22_bay_offered_amperes",
            "What the node signals to the EV",
        )
        .write(&mut e, per_bay(|bay| bay.offered_a))?;
        Family::gauge("ctrl22_bay_online", "1 while the bay's node is heard")
            .write(&mut e, per_bay(|bay| flag(bay.online)))?;
        Family::gauge(
            "ctrl22_bay_state",
            "The bay's state in OCPP's words (1 for the current one)",
        )
        .write(
            &mut e,
            s.bays.iter().map(|bay| {
                (
                    [
                        ("bay", bay.dev.clone()),
                        ("state", bay.status.as_str().to_owned()),
                    ],
                    1.0,
                )
            }),
        )?;
        Ok(())
    }
}

/// `ctrl22_mesh_commands_total{cmd}` from the live counters.
#[derive(Debug)]
struct CommandCollector(LinkTraffic);

impl Collector for CommandCollector {
    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        Family::counter(
            "ctrl22_mesh_commands",
            "Commands handed to the mesh link, by cmd",
        )
        .write(
            &mut e,
            self.0.commands().map(|(cmd, n)| ([("cmd", cmd)], n as f64)),
        )
    }
}
