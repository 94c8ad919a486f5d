//! The `ctrl22-bridge` binary: help on every command, exit codes, `check-config` output, and
//! one mesh operator tool end to end against a fake root on a real broker.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ctrl22_bridge::config::{Config, REDACTED};
use ctrl22_node::mesh::{encode_uplink_mqtt_vec, MacAddr, NodeMessage};
use ctrl22_testkit::{Mosquitto, Recorder};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/ctrl22.toml");

fn bridge() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ctrl22-bridge"));
    c.env_remove("CTRL22_CONFIG").env_remove("RUST_LOG");
    c
}

fn run(args: &[&str]) -> Output {
    bridge().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs the bridge, which must exit 0; its standard output.
fn succeeds(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["run"],
        &["demo"],
        &["check-config"],
        &["mesh"],
        &["mesh", "status"],
        &["mesh", "system"],
        &["mesh", "restart"],
        &["mesh", "getpar"],
        &["mesh", "setpar"],
        &["mesh", "monitor"],
        &["mesh", "upgrade"],
        &["mesh", "avrflash"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        assert!(succeeds(&args).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let f = config_file("[site]\nmax_current = [32, 4, 32]\n");
    for command in ["check-config", "run"] {
        let out = run(&[command, "--config", f.path().to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{command}");
        assert!(
            stderr(&out).contains("site.max_current[1]"),
            "{}",
            stderr(&out)
        );
    }
    let f = config_file("[mesh]\ntransprot = \"tcp\"\n");
    let out = run(&["check-config", "--config", f.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("transprot"), "{}", stderr(&out));

    let out = run(&["check-config", "--config", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent.toml"));
}

#[test]
fn global_flags_go_before_or_after_the_subcommand() {
    for args in [
        &[
            "--log-format",
            "json",
            "-v",
            "check-config",
            "--config",
            EXAMPLE,
        ][..],
        &[
            "check-config",
            "--log-format",
            "json",
            "-vv",
            "--config",
            EXAMPLE,
        ],
        &["--config", EXAMPLE, "check-config"],
    ] {
        assert!(succeeds(args).contains("garage-west"), "{args:?}");
    }
}

#[test]
fn bad_environment_override_exits_2_naming_the_key() {
    let out = bridge()
        .args(["check-config"])
        .env("CTRL22_MESH__HEARTBEAT_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("mesh.heartbeat_timeout"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_arguments_exit_2() {
    for args in [
        &["mesh", "status", "not-a-mac"][..],
        &["mesh", "avrflash", "*", "image.hex"],
        &["demo", "--nodes", "many"],
        &["frobnicate"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn check_config_prints_the_effective_config_with_secrets_redacted() {
    let text = succeeds(&["check-config", "--config", EXAMPLE]);
    for secret in [
        "mqtt-secret",
        "ha-long-lived-token",
        "ocpp-secret",
        "http-secret",
    ] {
        assert!(!text.contains(secret), "{secret} leaked");
    }
    assert!(text.contains(REDACTED));
    // Effective: defaults are filled in, node keys normalised, and it parses again.
    let printed = Config::from_toml(&text).unwrap();
    assert!(printed.nodes.contains_key("d8a01d55a56c"));
    assert_eq!(printed.mesh.wdtsec, 60);
}

#[test]
fn check_config_without_a_file_prints_defaults() {
    let printed = Config::from_toml(&succeeds(&["check-config"])).unwrap();
    assert_eq!(printed, Config::default());
}

#[test]
fn demo_rejects_a_bad_speed() {
    let out = run(&["demo", "--speed", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--speed"));
}

#[test]
fn demo_runs_until_sigterm_and_exits_0() {
    let http = format!("127.0.0.1:{}", ctrl22_testkit::free_port().unwrap());
    let mut demo = bridge()
        .args(["demo", "--nodes", "2", "--http", &http])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(demo.try_wait().unwrap().is_none(), "demo ended early");
    let killed = Command::new("kill")
        .args(["-TERM", &demo.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = demo.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "demo ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = demo.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", stderr(&out));
}

const NODE: MacAddr = MacAddr([0xd8, 0xa0, 0x1d, 0x55, 0xa5, 0x6c]);

#[tokio::test]
async fn mesh_getpar_prints_the_reply_of_a_fake_root() {
    let broker = Mosquitto::start().unwrap();
    let root = Recorder::connect(broker.port(), "fake-root", &["/DEMESH/+/control"])
        .await
        .unwrap();
    let url = broker.url();
    let tool = bridge()
        .args([
            "mesh",
            "--broker",
            &url,
            "--wait",
            "3s",
            "getpar",
            "d8:a0:1d:55:a5:6c",
            "ver",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let command = root
        .wait_for(Duration::from_secs(10), "the getpar command", |m| {
            m.topic == "/DEMESH/d8a01d55a56c/control"
        })
        .await
        .unwrap();
    assert_eq!(command.text(), r#"{"cmd":"avrgetpar","avrpar":"ver"}"#);
    let reply = NodeMessage::AvrGetPar {
        par: "ver".try_into().unwrap(),
        val: Some(14),
    };
    let (topic, body) = encode_uplink_mqtt_vec("DEMESH", NODE, &reply).unwrap();
    root.publish(&topic, body).await.unwrap();

    let out = tokio::task::spawn_blocking(move || tool.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("d8:a0:1d:55:a5:6c"), "{stdout}");
    assert!(stdout.contains(r#""avrval":14"#), "{stdout}");
}

#[tokio::test]
async fn mesh_tool_without_reply_exits_1() {
    let broker = Mosquitto::start().unwrap();
    let url = broker.url();
    let out = tokio::task::spawn_blocking(move || {
        bridge()
            .args([
                "mesh",
                "--broker",
                &url,
                "--wait",
                "500ms",
                "status",
                "d8a01d55a56c",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no reply"), "{}", stderr(&out));
}

#[tokio::test]
async fn mesh_status_over_tcp_to_a_connecting_root() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let port = ctrl22_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let tool = bridge()
        .args([
            "mesh",
            "--transport",
            "tcp",
            "--listen",
            &listen,
            "--wait",
            "2s",
        ])
        .args(["status", "root", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut root = ctrl22_testkit::tcp::connect_as_root(listen.parse().unwrap()).await;
    let mut buf = vec![0u8; 1024];
    let n = root.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], br#"{"dst":"root","cmd":"status"}"#);
    let reply = NodeMessage::Status(ctrl22_node::mesh::StatusReply {
        parent: MacAddr([0x44, 0x4e, 0x6d, 0x01, 0x02, 0x03]),
        rssi: -60,
        layer: 1,
        nodes: 12,
        plat: 7,
    });
    let line = ctrl22_node::mesh::encode_uplink_tcp_vec(NODE, &reply).unwrap();
    root.write_all(&line).await.unwrap();

    let out = tokio::task::spawn_blocking(move || tool.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(r#""layer":1"#), "{stdout}");
    assert!(stdout.contains(r#""mesh_nodes":12"#), "{stdout}");
}

#[tokio::test]
async fn mesh_avrflash_over_tcp_retries_a_bad_chunk_and_flashes() {
    use ctrl22_node::mesh::{avr_chunk_crc, decode_command_tcp, encode_uplink_tcp_vec, Command};
    use ctrl22_node::mesh::{Address, OtaState};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let image: Vec<u8> = (0..300u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &image).unwrap();
    let port = ctrl22_testkit::free_port().unwrap();
    let listen = format!("127.0.0.1:{port}");
    let tool = bridge()
        .args(["mesh", "--transport", "tcp", "--listen", &listen])
        .args(["avrflash", "d8a01d55a56c", file.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut root = ctrl22_testkit::tcp::connect_as_root(listen.parse().unwrap()).await;

    // A fake node behind the root: it fails the CRC check of the second chunk once.
    let mut received = vec![0u8; image.len()];
    let mut failed_once = false;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), root.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the tool hung up");
        let (dst, cmd) = decode_command_tcp(&buf[..n]).unwrap();
        assert_eq!(dst, Address::Node(NODE));
        let reply = match cmd {
            Command::AvrOtaRecImg => NodeMessage::AvrOta {
                state: OtaState::RecImg,
            },
            Command::AvrImg { addr, data, crc } => {
                assert_eq!(crc, avr_chunk_crc(&data));
                assert!(data.len() <= 128);
                let at = addr as usize;
                received[at..at + data.len()].copy_from_slice(&data);
                let ok = addr != 128 || failed_once;
                failed_once |= addr == 128;
                NodeMessage::AvrImg { addr, ok }
            }
            Command::AvrOtaFlash { image_len } => {
                assert_eq!(image_len as usize, image.len());
                let line = encode_uplink_tcp_vec(
                    NODE,
                    &NodeMessage::AvrOta {
                        state: OtaState::Running,
                    },
                )
                .unwrap();
                root.write_all(&line).await.unwrap();
                break;
            }
            other => panic!("unexpected command {other:?}"),
        };
        root.write_all(&encode_uplink_tcp_vec(NODE, &reply).unwrap())
            .await
            .unwrap();
    }
    assert!(failed_once);
    assert_eq!(received, image);

    let out = tokio::task::spawn_blocking(move || tool.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("avrflash ok"));
}
