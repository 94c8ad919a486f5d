//! The SunSpec adapter against a SunSpec register map served by a tokio-modbus TCP server
//! in the test: readings with scale factors, the SolarEdge sign flip, and a device without
//! SunSpec as a typed error.

use std::future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ctrl22_bridge::solar::{sma, speedwire, sunspec};
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response};

use super::solar_common::{first_power_of_each, site, source, start};

/// Holding registers from `base` on, as a Modbus device serves them.
#[derive(Clone)]
struct RegisterMap {
    base: u16,
    regs: Arc<Mutex<Vec<u16>>>,
}

impl Service for RegisterMap {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Request<'static>) -> Self::Future {
        let regs = self.regs.lock().expect("map").clone();
        future::ready(match request {
            Request::ReadHoldingRegisters(address, count) => {
                let start = usize::from(address).checked_sub(usize::from(self.base));
                start
                    .and_then(|s| regs.get(s..s + usize::from(count)))
                    .map(|words| Response::ReadHoldingRegisters(words.to_vec()))
                    .ok_or(ExceptionCode::IllegalDataAddress)
            }
            _ => Err(ExceptionCode::IllegalFunction),
        })
    }
}

async fn serve(regs: Vec<u16>) -> SocketAddr {
    serve_at(sunspec::BASE, regs).await
}

async fn serve_at(base: u16, regs: Vec<u16>) -> SocketAddr {
    serve_map(RegisterMap {
        base,
        regs: Arc::new(Mutex::new(regs)),
    })
    .await
}

/// A SunSpec device whose registers the test changes while it serves.
pub async fn serve_sunspec(regs: Arc<Mutex<Vec<u16>>>) -> SocketAddr {
    serve_map(RegisterMap {
        base: sunspec::BASE,
        regs,
    })
    .await
}

async fn serve_map(map: RegisterMap) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let server = Server::new(listener);
        let on_connected = move |stream, socket_addr| {
            let map = map.clone();
            async move { accept_tcp_connection(stream, socket_addr, move |_| Ok(Some(map.clone()))) }
        };
        let _ = server.serve(&on_connected, |_| {}).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sunspec_inverter_and_meter_over_modbus_tcp() {
    let plain = serve(sunspec::example_map(
        5120,
        [1200, -300, 400],
        [520, 130, 175],
    ))
    .await;
    let solaredge = serve(sunspec::example_map(
        3000,
        [-800, -800, -800],
        [350, 350, 350],
    ))
    .await;
    // Answers Modbus but has no SunSpec map: the marker is missing.
    let foreign = serve(vec![0; 200]).await;
    let mut site = site();
    let health = start(
        &site,
        vec![
            source(&format!(
                "kind = \"sunspec\"\nurl = \"modbus://{plain}\"\nmeasures = [\"grid\", \"pv\"]\ninterval = \"100ms\""
            )),
            // SolarEdge meters count export as positive.
            source(&format!(
                "kind = \"sunspec\"\nurl = \"tcp://{solaredge}\"\ninvert = true\ninterval = \"100ms\""
            )),
            source(&format!("kind = \"sunspec\"\nurl = \"modbus://{foreign}\"\ninterval = \"100ms\"")),
        ],
        None,
    );
    let readings = first_power_of_each(&mut site, 3).await;
    let r = readings[&0].clone().expect("plain map");
    assert_eq!((r.grid_w, r.pv_w), (Some(1300), Some(5120)));
    assert_eq!(r.grid_phase_w, Some([1200, -300, 400]));
    assert_eq!(r.grid_phase_a, Some([5.2, -1.3, 1.75]));
    let se = readings[&1].clone().expect("solaredge map");
    assert_eq!((se.grid_w, se.pv_w), (Some(2400), None));
    assert!(
        readings[&2].as_ref().is_err_and(|e| e.contains("SunS")),
        "{readings:?}"
    );
    let health = health.snapshot();
    assert!(
        health[2].errors_total.contains_key("malformed"),
        "{health:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sma_modbus_profile_with_nan_registers() {
    let mut regs = vec![0u16; 1000];
    let mut put = |address: u16, value: u32| {
        let at = usize::from(address - 30_500);
        regs[at] = (value >> 16) as u16;
        regs[at + 1] = (value & 0xFFFF) as u16;
    };
    put(sma::PV_W, 0x8000_0000); // NaN: the inverter sleeps
    put(sma::GRID_IMPORT_W, 1800);
    put(sma::GRID_EXPORT_W, 0);
    put(sma::SOC_PCT, 0xFFFF_FFFF); // NaN
    put(sma::BATTERY_CHARGE_W, 0);
    put(sma::BATTERY_DISCHARGE_W, 900);
    let addr = serve_at(30_500, regs).await;
    let mut site = site();
    let _health = start(
        &site,
        vec![
            source(&format!(
                "kind = \"sma-modbus\"\nurl = \"modbus://{addr}\"\nmeasures = [\"grid\", \"pv\", \"battery\"]\ninterval = \"100ms\""
            )),
            source(&format!(
                "kind = \"sma-modbus\"\nurl = \"modbus://{addr}\"\nmeasures = [\"soc\"]\ninterval = \"100ms\""
            )),
        ],
        None,
    );
    let readings = first_power_of_each(&mut site, 2).await;
    let r = readings[&0].clone().expect("reading");
    assert_eq!(
        (r.grid_w, r.pv_w, r.battery_w),
        (Some(1800), Some(0), Some(900))
    );
    // Only a NaN SoC: nothing to report, an error, not 0 %.
    assert!(readings[&1].is_err(), "{readings:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speedwire_datagrams_become_readings() {
    let port = ctrl22_testkit::free_port().expect("port");
    let mut site = site();
    let _health = start(
        &site,
        vec![source(&format!(
            "kind = \"sma-speedwire\"\nurl = \"udp://127.0.0.1:{port}\"\nserial = 1900000001\ninterval = \"100ms\"\ntimeout = \"2s\""
        ))],
        None,
    );
    let sender = tokio::net::UdpSocket::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let other = speedwire::datagram(42, &[(1, 99_990), (2, 0)]);
    let ours = speedwire::datagram(1_900_000_001, &[(1, 0), (2, 41_000)]);
    let reading = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            sender
                .send_to(&other, ("127.0.0.1", port))
                .await
                .expect("send");
            sender
                .send_to(&ours, ("127.0.0.1", port))
                .await
                .expect("send");
            if let Ok(Some(ctrl22_bridge::handle::SiteRequest::Power { reading, .. })) =
                tokio::time::timeout(std::time::Duration::from_millis(200), site.requests.recv())
                    .await
            {
                return reading;
            }
        }
    })
    .await
    .expect("a reading");
    // The other meter's import is ignored: only serial 1900000001, exporting 4.1 kW.
    assert_eq!(reading.expect("ok").grid_w, Some(-4100));
}
