//! Both mesh uplinks against a fake root: a real Mosquitto for MQTT, a plain socket for TCP.
//! Heartbeats and replies become typed events, garbage becomes `Rejected` without hurting the
//! link, and commands arrive in the root's wire form.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use ctrl22_bridge::config::MqttConfig;
use ctrl22_bridge::mesh::{
    spawn_mqtt, spawn_tcp, Address, Command, MacAddr, MeshCommand, MeshEvent, MeshSender,
    NodeMessage, RejectKind, TcpLinkOptions,
};
use ctrl22_node::mesh::{decode_command_tcp, encode_uplink_mqtt_vec, encode_uplink_tcp_vec};
use ctrl22_testkit::{free_port, Mosquitto, Recorder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const NODE: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa5, 0x6c]);
const HEARTBEAT: &str = r#"{"dev":"d8a01d55a56c","rssi":-72,"ccss":30,"amaxcur":160,"cmaxcur":320,"aphases":123,"cur1":158,"cur2":157,"cur3":160}"#;

async fn next(events: &mut mpsc::Receiver<MeshEvent>) -> MeshEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("no event within 10 s")
        .expect("link ended")
}

/// Skips link-state events (a reconnect may interleave) and returns the next other one.
async fn next_data(events: &mut mpsc::Receiver<MeshEvent>) -> MeshEvent {
    loop {
        match next(events).await {
            MeshEvent::LinkUp | MeshEvent::LinkDown => {}
            other => return other,
        }
    }
}

async fn expect_up(events: &mut mpsc::Receiver<MeshEvent>) {
    match next(events).await {
        MeshEvent::LinkUp => {}
        other => panic!("expected LinkUp, got {other:?}"),
    }
}

fn assert_heartbeat(event: &MeshEvent) {
    match event {
        MeshEvent::Message {
            src,
            msg: NodeMessage::Heartbeat(hb),
        } => {
            assert_eq!(*src, NODE);
            assert_eq!(hb.rssi, -72);
            assert_eq!(hb.cur[2].get(), 160);
        }
        other => panic!("expected a heartbeat, got {other:?}"),
    }
}

fn assert_rejected(event: &MeshEvent, kind: RejectKind) {
    match event {
        MeshEvent::Rejected { reason, .. } => assert_eq!(*reason, kind, "{event:?}"),
        other => panic!("expected Rejected({kind}), got {other:?}"),
    }
}

fn mqtt_config(broker: &Mosquitto) -> MqttConfig {
    MqttConfig {
        url: broker.url(),
        client_id: "bridge-under-test".into(),
        ..MqttConfig::default()
    }
}

/// The MQTT link with `config`, once it reports itself up.
async fn mqtt_link(config: &MqttConfig) -> (MeshSender, mpsc::Receiver<MeshEvent>) {
    let (tx, mut events) = mpsc::channel(64);
    let sender = spawn_mqtt(config, "DEMESH", tx).await.unwrap();
    expect_up(&mut events).await;
    (sender, events)
}

/// A client standing in for the mesh root: it sees the commands the bridge sends.
async fn fake_root(broker: &Mosquitto) -> Recorder {
    Recorder::connect(broker.port(), "fake-root", &["/DEMESH/+/control"])
        .await
        .unwrap()
}

/// The root publishes the test heartbeat and the link hands it on.
async fn heartbeat_arrives(root: &Recorder, events: &mut mpsc::Receiver<MeshEvent>) {
    root.publish("/DEMESH/d8a01d55a56c/heartbeat", HEARTBEAT)
        .await
        .unwrap();
    assert_heartbeat(&next_data(events).await);
}

#[tokio::test]
async fn mqtt_messages_garbage_and_commands() {
    let broker = Mosquitto::start().unwrap();
    let (sender, mut events) = mqtt_link(&mqtt_config(&broker)).await;
    let root = fake_root(&broker).await;

    heartbeat_arrives(&root, &mut events).await;

    let (topic, body) =
        encode_uplink_mqtt_vec("DEMESH", NODE, &NodeMessage::AvrSetPar { ok: true }).unwrap();
    assert_eq!(topic, "/DEMESH/d8a01d55a56c/acknowledge");
    root.publish(&topic, body).await.unwrap();
    match next_data(&mut events).await {
        MeshEvent::Message {
            src,
            msg: NodeMessage::AvrSetPar { ok: true },
        } => assert_eq!(src, NODE),
        other => panic!("expected the avrsetpar reply, got {other:?}"),
    }

    root.publish("/DEMESH/d8a01d55a56c/heartbeat", "not json")
        .await
        .unwrap();
    assert_rejected(&next_data(&mut events).await, RejectKind::Malformed);
    root.publish("/DEMESH/d8a01d55a56c/heartbeat", vec![b'{'; 100_000])
        .await
        .unwrap();
    assert_rejected(&next_data(&mut events).await, RejectKind::TooLong);
    root.publish("/DEMESH/nonsense/heartbeat", HEARTBEAT)
        .await
        .unwrap();
    assert_rejected(&next_data(&mut events).await, RejectKind::BadAddress);

    // The link survived all that.
    heartbeat_arrives(&root, &mut events).await;

    sender
        .send(MeshCommand {
            dst: Address::Node(NODE),
            cmd: Command::AvrSetPar {
                par: "smaxcur".try_into().unwrap(),
                val: 160,
            },
        })
        .await
        .unwrap();
    sender
        .send(MeshCommand {
            dst: Address::Broadcast,
            cmd: Command::Status,
        })
        .await
        .unwrap();
    let set = root
        .wait_for(WAIT, "setpar command", |m| {
            m.topic.ends_with("a56c/control")
        })
        .await
        .unwrap();
    assert_eq!(set.topic, "/DEMESH/d8a01d55a56c/control");
    assert_eq!(
        set.text(),
        r#"{"cmd":"avrsetpar","avrpar":"smaxcur","avrval":160}"#
    );
    let status = root
        .wait_for(WAIT, "broadcast status", |m| m.topic == "/DEMESH/*/control")
        .await
        .unwrap();
    assert_eq!(status.text(), r#"{"cmd":"status"}"#);
}

#[tokio::test]
async fn mqtt_reconnects_and_subscribes_again() {
    let port = free_port().unwrap();
    let broker = Mosquitto::start_on(port).unwrap();
    let (sender, mut events) = mqtt_link(&mqtt_config(&broker)).await;
    drop(broker);
    match next(&mut events).await {
        MeshEvent::LinkDown => {}
        other => panic!("expected LinkDown, got {other:?}"),
    }
    let down = sender
        .send(MeshCommand {
            dst: Address::Root,
            cmd: Command::System,
        })
        .await;
    assert!(down.is_err(), "commands are refused while the link is down");

    let broker = Mosquitto::start_on(port).unwrap();
    expect_up(&mut events).await;
    // (The recorder returns once its subscriptions are acknowledged, so it needs one.)
    let root = fake_root(&broker).await;
    heartbeat_arrives(&root, &mut events).await;
}

async fn tcp_link() -> (std::net::SocketAddr, MeshSender, mpsc::Receiver<MeshEvent>) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let (tx, events) = mpsc::channel(64);
    let sender = spawn_tcp(addr, TcpLinkOptions::default(), tx)
        .await
        .unwrap();
    (addr, sender, events)
}

fn heartbeat_line() -> Vec<u8> {
    let MeshEvent::Message { msg, .. } = heartbeat_event() else {
        unreachable!()
    };
    encode_uplink_tcp_vec(NODE, &msg).unwrap()
}

fn heartbeat_event() -> MeshEvent {
    let (src, msg) = ctrl22_node::mesh::decode_uplink_mqtt(
        "DEMESH",
        "/DEMESH/d8a01d55a56c/heartbeat",
        HEARTBEAT.as_bytes(),
    )
    .unwrap();
    MeshEvent::Message { src, msg }
}

#[tokio::test]
async fn tcp_lines_garbage_huge_line_and_paced_commands() {
    let (addr, sender, mut events) = tcp_link().await;
    let mut root = TcpStream::connect(addr).await.unwrap();
    expect_up(&mut events).await;

    let line = heartbeat_line();
    assert!(line.ends_with(b"\r\n"));
    assert!(line.starts_with(br#"{"src":"d8:a0:1d:55:a5:6c","mtype":"heartbeat""#));
    // A heartbeat split across writes, garbage, then a 1 MB line without a newline for a while.
    let (a, b) = line.split_at(20);
    root.write_all(a).await.unwrap();
    root.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    root.write_all(b).await.unwrap();
    assert_heartbeat(&next(&mut events).await);
    root.write_all(b"{\"src\":garbage}\r\n").await.unwrap();
    assert_rejected(&next(&mut events).await, RejectKind::Malformed);
    root.write_all(&vec![b'x'; 1024 * 1024]).await.unwrap();
    assert_rejected(&next(&mut events).await, RejectKind::TooLong);
    root.write_all(b"yyy\r\n").await.unwrap();
    root.write_all(&line).await.unwrap();
    assert_heartbeat(&next(&mut events).await);

    // Two commands back to back must reach the root in separate reads.
    let first = MeshCommand {
        dst: Address::Node(NODE),
        cmd: Command::AvrGetPar {
            par: "ver".try_into().unwrap(),
        },
    };
    let second = MeshCommand {
        dst: Address::Root,
        cmd: Command::Status,
    };
    sender.send(first.clone()).await.unwrap();
    sender.send(second.clone()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    for expected in [first, second] {
        let n = tokio::time::timeout(WAIT, root.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let (dst, cmd) = decode_command_tcp(&buf[..n]).unwrap_or_else(|e| {
            panic!(
                "one read, one command: {e}: {}",
                String::from_utf8_lossy(&buf[..n])
            )
        });
        assert_eq!(MeshCommand { dst, cmd }, expected);
    }
    drop(root);
    match next(&mut events).await {
        MeshEvent::LinkDown => {}
        other => panic!("expected LinkDown, got {other:?}"),
    }
}

#[tokio::test]
async fn tcp_new_connection_replaces_a_stale_one() {
    let (addr, sender, mut events) = tcp_link().await;
    let mut stale = TcpStream::connect(addr).await.unwrap();
    expect_up(&mut events).await;
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    // The link stays up across the replacement: no event; give the accept a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The stale socket is no longer read...
    let _ = stale.write_all(&heartbeat_line()).await;
    // ...and commands go to the fresh one.
    sender
        .send(MeshCommand {
            dst: Address::Root,
            cmd: Command::System,
        })
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(WAIT, fresh.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf[..n], br#"{"dst":"root","cmd":"system"}"#);
    fresh.write_all(&heartbeat_line()).await.unwrap();
    assert_rejected(&next(&mut events).await, RejectKind::TcpReplaced);
    assert_heartbeat(&next(&mut events).await);

    // The stale one was closed by the bridge.
    let n = tokio::time::timeout(WAIT, stale.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(n, Ok(0) | Err(_)),
        "stale socket still open: {n:?}"
    );

    drop(fresh);
    match next(&mut events).await {
        MeshEvent::LinkDown => {}
        other => panic!("expected LinkDown, got {other:?}"),
    }
}

fn sh(program: &str, args: &[&str], dir: &std::path::Path) {
    let out = std::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA and a `localhost` server certificate signed by it, made with the openssl CLI.
fn make_certificates(dir: &std::path::Path) {
    sh(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=ctrl22 test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        dir,
    );
    sh(
        "openssl",
        &[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        dir,
    );
    sh(
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-copy_extensions",
            "copy",
            "-out",
            "server.pem",
        ],
        dir,
    );
}

/// A broker with a TLS listener that requires a password and a plain one for the fake root.
struct TlsBroker {
    child: std::process::Child,
    tls_port: u16,
    plain_port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tls_broker() -> TlsBroker {
    let dir = tempfile::tempdir().unwrap();
    make_certificates(dir.path());
    sh(
        "mosquitto_passwd",
        &["-b", "-c", "passwd", "bridge", "s3cret"],
        dir.path(),
    );
    let (tls_port, plain_port) = (free_port().unwrap(), free_port().unwrap());
    let d = dir.path().display();
    let conf = format!(
        // `user root`: run as root, mosquitto would switch to its own user, which cannot read
        // the keys in our private temporary directory.
        "per_listener_settings true\npersistence false\nuser root\n\
         listener {tls_port} 127.0.0.1\ncafile {d}/ca.pem\ncertfile {d}/server.pem\n\
         keyfile {d}/server.key\nallow_anonymous false\npassword_file {d}/passwd\n\
         listener {plain_port} 127.0.0.1\nallow_anonymous true\n"
    );
    std::fs::write(dir.path().join("mosquitto.conf"), conf).unwrap();
    let child = std::process::Command::new(ctrl22_testkit::mosquitto_binary())
        .arg("-c")
        .arg(dir.path().join("mosquitto.conf"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", tls_port)).is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", plain_port)).is_ok()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsBroker {
        child,
        tls_port,
        plain_port,
        dir,
    }
}

#[tokio::test]
async fn mqtts_with_credentials_and_a_private_ca() {
    if std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no openssl CLI to make test certificates");
        return;
    }
    let broker = start_tls_broker();
    let cfg = MqttConfig {
        url: format!("mqtts://localhost:{}", broker.tls_port),
        username: Some("bridge".into()),
        password: Some("s3cret".into()),
        ca_file: Some(broker.dir.path().join("ca.pem")),
        ..MqttConfig::default()
    };
    let (sender, mut events) = mqtt_link(&cfg).await;

    let root = Recorder::connect(broker.plain_port, "fake-root", &["/DEMESH/+/control"])
        .await
        .unwrap();
    heartbeat_arrives(&root, &mut events).await;
    sender
        .send(MeshCommand {
            dst: Address::Root,
            cmd: Command::System,
        })
        .await
        .unwrap();
    let command = root
        .wait_for(WAIT, "command over TLS", |m| {
            m.topic == "/DEMESH/root/control"
        })
        .await
        .unwrap();
    assert_eq!(command.text(), r#"{"cmd":"system"}"#);

    // A wrong password never gets the link up.
    let wrong = MqttConfig {
        password: Some("wrong".into()),
        client_id: "intruder".into(),
        ..cfg
    };
    let (tx, mut events) = mpsc::channel(64);
    let _sender = spawn_mqtt(&wrong, "DEMESH", tx).await.unwrap();
    let up = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Some(MeshEvent::LinkUp) = events.recv().await {
                break;
            }
        }
    })
    .await;
    assert!(up.is_err(), "authenticated with a wrong password");
}
