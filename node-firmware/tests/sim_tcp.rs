//! The root's plain TCP uplink: the test is the host (it listens, like `dmctrl.py`), the
//! `ctrl22-node-sim` binary connects, writes bare JSON objects as the firmware does and
//! answers commands; after the host drops the connection the root reconnects.
//!
//! The host reads as `dmctrl.py` does: one `recv()` = one JSON object, nothing before or
//! after it. That holds only if the root writes each message on its own, spaced, with
//! `TCP_NODELAY`; the second test runs the same reader as a Python script.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ctrl22_node::mesh::{decode_uplink_tcp, MacAddr, NodeMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the simulated root connects")
        .unwrap();
    stream
}

/// Reads until `pred` accepts a decoded message, one `read()` per message: every read must
/// be exactly one JSON object, bare (no `\r\n`), as `json.loads(sock.recv(4096))` wants it.
async fn read_until(
    link: &mut TcpStream,
    mut pred: impl FnMut(&MacAddr, &NodeMessage) -> bool,
) -> (MacAddr, NodeMessage) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout_at(deadline, link.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(n > 0, "the root closed the connection");
        let read = &buf[..n];
        let text = String::from_utf8_lossy(read);
        assert!(read.starts_with(b"{") && read.ends_with(b"}"), "{text:?}");
        serde_json::from_slice::<serde_json::Value>(read)
            .unwrap_or_else(|e| panic!("one read, one object: {e}: {text:?}"));
        let (src, msg) = decode_uplink_tcp(read).unwrap();
        if pred(&src, &msg) {
            return (src, msg);
        }
    }
}

fn start_sim(port: u16, nodes: &str) -> Sim {
    Sim(Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args(["--uplink", &format!("tcp://127.0.0.1:{port}")])
        .args(["--nodes", nodes, "--heartbeat", "1000", "--speed", "5"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap())
}

#[tokio::test]
async fn status_over_the_tcp_uplink_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _sim = start_sim(port, "3");

    let mut link = accept(&listener).await;
    read_until(&mut link, |_, m| matches!(m, NodeMessage::Heartbeat(_))).await;
    link.write_all(br#"{"dst":"root","cmd":"status"}"#)
        .await
        .unwrap();
    let (root, status) = read_until(&mut link, |_, m| matches!(m, NodeMessage::Status(_))).await;
    let NodeMessage::Status(status) = status else {
        unreachable!()
    };
    assert_eq!((status.layer, status.nodes), (1, 3));

    // A command to one node by its colon MAC; the reply names that node. (No pause before
    // it: a reader that pauses lets messages pile up into one read, and fails as dmctrl.py.)
    let cmd = format!(r#"{{"dst":"{root}","cmd":"avrgetpar","avrpar":"ver"}}"#);
    link.write_all(cmd.as_bytes()).await.unwrap();
    let (src, reply) =
        read_until(&mut link, |_, m| matches!(m, NodeMessage::AvrGetPar { .. })).await;
    assert_eq!(src, root);
    assert!(matches!(reply, NodeMessage::AvrGetPar { val: Some(v), .. } if v > 0));

    // The host hangs up; the root retries and comes back.
    drop(link);
    let mut link = accept(&listener).await;
    read_until(&mut link, |_, m| matches!(m, NodeMessage::Heartbeat(_))).await;
}

/// What `dmctrl.py` does with the root's connection, reduced to its reading: send one
/// command, then parse every `recv(4096)` as exactly one JSON object with `json.loads`.
const DMCTRL_READER: &str = r#"
import json, socket, sys
server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", 0))
server.listen(1)
print(server.getsockname()[1], flush=True)
server.settimeout(20)
conn, _ = server.accept()
conn.settimeout(20)
conn.send(b'{"dst":"root","cmd":"status"}')
kinds = []
while len(kinds) < 30 or "status" not in kinds:
    data = conn.recv(4096)
    if not data:
        sys.exit("connection closed")
    kinds.append(json.loads(data)["mtype"])
print(" ".join(kinds), flush=True)
"#;

#[test]
fn dmctrl_style_reader_parses_every_recv_as_one_object() {
    use std::io::{BufRead, BufReader};

    let mut python = Command::new("python3")
        .args(["-c", DMCTRL_READER])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut out = BufReader::new(python.stdout.take().unwrap());
    let mut port = String::new();
    out.read_line(&mut port).unwrap();
    let _sim = start_sim(port.trim().parse().unwrap(), "5");
    let mut kinds = String::new();
    out.read_line(&mut kinds).unwrap();
    let status = python.wait_with_output().unwrap();
    assert!(
        status.status.success(),
        "json.loads failed on a recv(): {}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        kinds.contains("status") && kinds.contains("heartbeat"),
        "{kinds}"
    );
}
