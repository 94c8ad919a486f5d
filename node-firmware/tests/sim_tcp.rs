//! The root's plain TCP uplink: the test is the host (it listens, like `dmctrl.py`), the
//! `ctrl22-node-sim` binary connects, streams `\r\n`-terminated JSON lines and answers
//! commands; after the host drops the connection the root reconnects.

#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ctrl22_node::mesh::{decode_uplink_tcp, MacAddr, NodeMessage};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

struct Sim(Child);

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn accept(listener: &TcpListener) -> BufReader<TcpStream> {
    let (stream, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("the simulated root connects")
        .unwrap();
    BufReader::new(stream)
}

/// Reads lines until `pred` accepts a decoded message; checks every line's framing.
async fn read_until(
    link: &mut BufReader<TcpStream>,
    mut pred: impl FnMut(&MacAddr, &NodeMessage) -> bool,
) -> (MacAddr, NodeMessage) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut line = Vec::new();
        tokio::time::timeout_at(deadline, link.read_until(b'\n', &mut line))
            .await
            .expect("an answer within 10 s")
            .unwrap();
        assert!(
            line.ends_with(b"\r\n"),
            "{:?}",
            String::from_utf8_lossy(&line)
        );
        let (src, msg) = decode_uplink_tcp(&line).unwrap();
        if pred(&src, &msg) {
            return (src, msg);
        }
    }
}

#[tokio::test]
async fn status_over_the_tcp_uplink_and_reconnect() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let _sim = Sim(Command::new(env!("CARGO_BIN_EXE_ctrl22-node-sim"))
        .args(["--uplink", &format!("tcp://127.0.0.1:{port}")])
        .args(["--nodes", "3", "--heartbeat", "1000", "--speed", "5"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap());

    let mut link = accept(&listener).await;
    read_until(&mut link, |_, m| matches!(m, NodeMessage::Heartbeat(_))).await;
    link.get_mut()
        .write_all(br#"{"dst":"root","cmd":"status"}"#)
        .await
        .unwrap();
    let (root, status) = read_until(&mut link, |_, m| matches!(m, NodeMessage::Status(_))).await;
    let NodeMessage::Status(status) = status else {
        unreachable!()
    };
    assert_eq!((status.layer, status.nodes), (1, 3));

    // A command to one node by its colon MAC; the reply names that node.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cmd = format!(r#"{{"dst":"{root}","cmd":"avrgetpar","avrpar":"ver"}}"#);
    link.get_mut().write_all(cmd.as_bytes()).await.unwrap();
    let (src, reply) =
        read_until(&mut link, |_, m| matches!(m, NodeMessage::AvrGetPar { .. })).await;
    assert_eq!(src, root);
    assert!(matches!(reply, NodeMessage::AvrGetPar { val: Some(v), .. } if v > 0));

    // The host hangs up; the root retries and comes back.
    drop(link);
    let mut link = accept(&listener).await;
    read_until(&mut link, |_, m| matches!(m, NodeMessage::Heartbeat(_))).await;
}
