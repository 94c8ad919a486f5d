//! The SunSpec adapter against a SunSpec register map served by a tokio-modbus TCP server
//! in the test: readings with scale factors, the SolarEdge sign flip, and a device without
//! SunSpec as a typed error.

use std::future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ctrl22_bridge::solar::sunspec;
use tokio_modbus::server::tcp::{accept_tcp_connection, Server};
use tokio_modbus::server::Service;
use tokio_modbus::{ExceptionCode, Request, Response};

use super::solar_common::{first_power_of_each, site, source, start};

/// Holding registers from 40000 on, as a SunSpec device serves them.
#[derive(Clone)]
struct RegisterMap(Arc<Mutex<Vec<u16>>>);

impl Service for RegisterMap {
    type Request = Request<'static>;
    type Response = Response;
    type Exception = ExceptionCode;
    type Future = future::Ready<Result<Response, ExceptionCode>>;

    fn call(&self, request: Request<'static>) -> Self::Future {
        let regs = self.0.lock().expect("map").clone();
        future::ready(match request {
            Request::ReadHoldingRegisters(address, count) => {
                let start = usize::from(address).checked_sub(usize::from(sunspec::BASE));
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let map = RegisterMap(Arc::new(Mutex::new(regs)));
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
    assert!(health[2].errors_total.contains_key("malformed"), "{health:?}");
}
