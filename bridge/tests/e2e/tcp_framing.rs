//! The TCP uplink as the firmware frames it: the root strips its `\r\n` and writes bare JSON
//! objects back to back (mesh-protocol.md section 3). A test root written here (plain tokio
//! sockets, messages typed out as the firmware prints them) talks to the link and to the
//! bridge binary; the splitter is checked by property tests.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use ctrl22_bridge::mesh::{
    spawn_tcp, Frame, MacAddr, MeshEvent, MeshSender, NodeMessage, ObjectSplitter, RejectKind,
    TcpLinkOptions,
};
use ctrl22_node::mesh::{decode_command_tcp, Address};
use ctrl22_testkit::bridge::{http_get, BridgeConfig, BridgeProcess, Uplink};
use ctrl22_testkit::{free_port, Mosquitto};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const MAX: usize = ctrl22_node::mesh::MAX_MESSAGE_LEN;

fn mac(n: u8) -> MacAddr {
    MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa5, n])
}

/// A heartbeat as the root writes it on TCP: `src` in colon form, `mtype`, no line end.
fn heartbeat(node: MacAddr, ccss: u8) -> Vec<u8> {
    format!(
        r#"{{"src":"{node}","mtype":"heartbeat","rssi":-61,"ccss":{ccss},"amaxcur":0,"cmaxcur":320,"aphases":0,"cur1":0,"cur2":0,"cur3":0}}"#
    )
    .into_bytes()
}

async fn next(events: &mut mpsc::Receiver<MeshEvent>) -> MeshEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("an event within 10 s")
        .expect("link ended")
}

async fn link(allow: Vec<IpAddr>) -> (SocketAddr, MeshSender, mpsc::Receiver<MeshEvent>) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let (tx, events) = mpsc::channel(64);
    let sender = spawn_tcp(addr, TcpLinkOptions { allow }, tx).await.unwrap();
    (addr, sender, events)
}

/// Connects to `to` from the loopback address `from` (all of 127/8 is this host on Linux).
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    let stream = socket.connect(to).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

fn expect_heartbeat_from(event: &MeshEvent, node: MacAddr) {
    match event {
        MeshEvent::Message {
            src,
            msg: NodeMessage::Heartbeat(_),
        } => assert_eq!(*src, node),
        other => panic!("expected a heartbeat from {node}, got {other:?}"),
    }
}

fn expect_rejected(event: &MeshEvent, kind: RejectKind) {
    match event {
        MeshEvent::Rejected { reason, .. } => assert_eq!(*reason, kind, "{event:?}"),
        other => panic!("expected Rejected({kind}), got {other:?}"),
    }
}

#[tokio::test]
async fn firmware_framing_reaches_the_link_object_by_object() {
    let (addr, _sender, mut events) = link(Vec::new()).await;
    let mut root = connect_from(Ipv4Addr::LOCALHOST, addr).await;
    assert!(matches!(next(&mut events).await, MeshEvent::LinkUp));

    // A bare object; two in one segment; one split over three writes; NULs and `\r\n`.
    root.write_all(&heartbeat(mac(1), 56)).await.unwrap();
    root.write_all(&[heartbeat(mac(2), 56), heartbeat(mac(3), 56)].concat())
        .await
        .unwrap();
    let split = heartbeat(mac(4), 56);
    for part in [&split[..10], &split[10..60], &split[60..]] {
        root.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    root.write_all(&[b"\0\0".as_slice(), &heartbeat(mac(5), 56), b"\r\n"].concat())
        .await
        .unwrap();
    for n in 1..=5 {
        expect_heartbeat_from(&next(&mut events).await, mac(n));
    }

    // An object far over the cap is skipped (counted once) and the next one still parses.
    let huge = format!(
        r#"{{"src":"{}","mtype":"avrlog","line":"{}"}}"#,
        mac(6),
        "}{".repeat(100_000)
    );
    for chunk in huge.as_bytes().chunks(3000) {
        root.write_all(chunk).await.unwrap();
    }
    root.write_all(&heartbeat(mac(6), 56)).await.unwrap();
    expect_rejected(&next(&mut events).await, RejectKind::TooLong);
    expect_heartbeat_from(&next(&mut events).await, mac(6));

    // Garbage between objects is counted, and the object after it is read.
    root.write_all(b"AT+RST\r\n").await.unwrap();
    root.write_all(&heartbeat(mac(7), 56)).await.unwrap();
    expect_rejected(&next(&mut events).await, RejectKind::Malformed);
    expect_heartbeat_from(&next(&mut events).await, mac(7));
}

#[tokio::test]
async fn a_root_outside_the_allow_list_is_refused_and_counted() {
    let (addr, _sender, mut events) = link(vec![IpAddr::from(Ipv4Addr::LOCALHOST)]).await;
    let mut intruder = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr).await;
    expect_rejected(&next(&mut events).await, RejectKind::TcpRefused);
    // Closed at once: it can command nothing and is heard no more.
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, intruder.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");

    let mut root = connect_from(Ipv4Addr::LOCALHOST, addr).await;
    assert!(matches!(next(&mut events).await, MeshEvent::LinkUp));
    root.write_all(&heartbeat(mac(1), 56)).await.unwrap();
    expect_heartbeat_from(&next(&mut events).await, mac(1));
}

#[tokio::test]
async fn every_replacement_is_counted() {
    let (addr, _sender, mut events) = link(Vec::new()).await;
    let _first = connect_from(Ipv4Addr::LOCALHOST, addr).await;
    assert!(matches!(next(&mut events).await, MeshEvent::LinkUp));
    // A rebooted root never closes its old socket: each new connection replaces the last.
    let _second = connect_from(Ipv4Addr::LOCALHOST, addr).await;
    expect_rejected(&next(&mut events).await, RejectKind::TcpReplaced);
    let mut third = connect_from(Ipv4Addr::LOCALHOST, addr).await;
    expect_rejected(&next(&mut events).await, RejectKind::TcpReplaced);
    third.write_all(&heartbeat(mac(9), 56)).await.unwrap();
    expect_heartbeat_from(&next(&mut events).await, mac(9));
}

/// Counters of `/api/v1/site`'s `rejected` map.
async fn rejected(http: SocketAddr, kind: &str) -> u64 {
    let site: serde_json::Value =
        serde_json::from_str(&http_get(http, "/api/v1/site").await.unwrap()).unwrap();
    site["rejected"][kind].as_u64().unwrap_or(0)
}

/// The bridge binary with `mesh.tcp_allow = ["127.0.0.1"]` and a test root that frames like
/// the firmware: every bay is discovered and commanded; an intruder is refused and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bridge_discovers_and_commands_every_bay_of_a_firmware_framed_root() {
    let broker = Mosquitto::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let http = SocketAddr::from(([127, 0, 0, 1], free_port().unwrap()));
    let config = BridgeConfig {
        uplink: Uplink::Tcp(listen),
        http_listen: http,
        ..BridgeConfig::new(broker.url())
    }
    .write(dir.path())
    .unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("[mesh]\n", "[mesh]\ntcp_allow = [\"127.0.0.1\"]\n"),
    )
    .unwrap();
    let _bridge = BridgeProcess::start(crate::bridge_binary(), &config).unwrap();

    let root = ctrl22_testkit::tcp::connect_as_root(listen).await;
    root.set_nodelay(true).unwrap();
    let (mut from_bridge, mut to_bridge) = root.into_split();

    let bays: Vec<MacAddr> = (1..=6).map(mac).collect();
    let writer = tokio::spawn({
        let bays = bays.clone();
        async move {
            loop {
                let [a, b, c, d, e, f] = [0, 1, 2, 3, 4, 5].map(|i| heartbeat(bays[i], 56));
                let mut writes: Vec<Vec<u8>> = vec![a, [b, c].concat()];
                writes.extend([d[..7].to_vec(), d[7..90].to_vec(), d[90..].to_vec()]);
                writes.push([b"\0".as_slice(), &e, b"\r\n", &f, b"\0\0"].concat());
                for write in writes {
                    if to_bridge.write_all(&write).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
                tokio::time::sleep(Duration::from_millis(800)).await;
            }
        }
    });

    // Commands come one per write; a slow reader may still see two in one read, so the test
    // cuts them with the same splitter and checks each is one command with a `dst`.
    let mut commanded = BTreeSet::new();
    let mut splitter = ObjectSplitter::new(MAX);
    let mut frames = Vec::new();
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    while commanded.len() < bays.len() {
        let n = tokio::time::timeout_at(deadline, from_bridge.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("commanded only {commanded:?} within 40 s"))
            .unwrap();
        assert!(n > 0, "the bridge closed the root's connection");
        splitter.push(&buf[..n], &mut frames);
        for frame in frames.drain(..) {
            let Frame::Object(object) = frame else {
                panic!("the bridge wrote something that is no object: {frame:?}");
            };
            let (dst, _cmd) = decode_command_tcp(&object).unwrap();
            if let Address::Node(node) = dst {
                commanded.insert(node);
            }
        }
    }
    assert_eq!(commanded, bays.iter().copied().collect());
    // The API shows the snapshot of the next control cycle.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let nodes: serde_json::Value =
            serde_json::from_str(&http_get(http, "/api/v1/nodes").await.unwrap()).unwrap();
        if nodes.as_array().map(Vec::len) == Some(bays.len()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bays listed: {nodes}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Someone else on the network: refused, counted, the root keeps its link.
    let _intruder = connect_from(Ipv4Addr::new(127, 0, 0, 2), listen).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while rejected(http, "tcp_refused").await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "tcp_refused not counted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rejected(http, "tcp_replaced").await, 0);
    assert_eq!(
        rejected(http, "malformed").await,
        0,
        "the framing is understood"
    );
    writer.abort();
}

/// A heartbeat-like object whose strings hold the characters a naive splitter trips on.
fn tricky_object() -> impl Strategy<Value = Vec<u8>> {
    let text = proptest::collection::vec(
        prop::sample::select(vec![
            '{', '}', '[', ']', '"', '\\', 'a', ' ', ':', ',', 'é', '\u{1}',
        ]),
        0..12,
    )
    .prop_map(|chars| chars.into_iter().collect::<String>());
    (text.clone(), text, -100i32..100, proptest::bool::ANY).prop_map(|(a, b, n, nested)| {
        let value = if nested {
            serde_json::json!({ "src": a, "mtype": "avrlog", "x": { "y": [n, b, { "z": [] }] } })
        } else {
            serde_json::json!({ "line": a, "n": n, "list": [b] })
        };
        serde_json::to_vec(&value).unwrap()
    })
}

fn separator() -> impl Strategy<Value = &'static [u8]> {
    prop::sample::select(vec![&b""[..], b" ", b"\r\n", b"\0", b"\0\0\r\n", b"\n\t"])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However TCP cuts a stream of objects, the same objects come out, in order.
    #[test]
    fn random_splits_yield_the_same_objects(
        objects in proptest::collection::vec((tricky_object(), separator()), 1..12),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let stream: Vec<u8> = objects.iter().flat_map(|(o, s)| o.iter().chain(s.iter())).copied().collect();
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        at.push(0);
        at.push(stream.len());
        at.sort_unstable();
        let mut splitter = ObjectSplitter::new(MAX);
        let mut out = Vec::new();
        for pair in at.windows(2) {
            splitter.push(&stream[pair[0]..pair[1]], &mut out);
        }
        let expected: Vec<Frame> = objects.into_iter().map(|(o, _)| Frame::Object(o)).collect();
        prop_assert_eq!(out, expected);
    }

    /// Any bytes: no panic, memory at one object's cap, and a NUL then an object always
    /// brings the stream back.
    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        noise in proptest::collection::vec(any::<u8>(), 0..4096),
        chunk in 1usize..300,
    ) {
        let max = 64;
        let mut splitter = ObjectSplitter::new(max);
        let mut out = Vec::new();
        for part in noise.chunks(chunk) {
            splitter.push(part, &mut out);
            prop_assert!(splitter.buffered() <= max + 1);
        }
        for frame in &out {
            if let Frame::Object(o) = frame {
                prop_assert!(o.len() <= max);
            }
        }
        out.clear();
        splitter.push(b"\0{\"ok\":1}", &mut out);
        prop_assert_eq!(out.last(), Some(&Frame::Object(b"{\"ok\":1}".to_vec())));
    }
}
