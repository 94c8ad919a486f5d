//! The harness itself works: a real broker starts and the recorder sees what is published.

use std::time::Duration;

use ctrl22_testkit::{Mosquitto, Recorder};

#[tokio::test]
async fn recorder_sees_what_is_published_through_a_real_broker() -> anyhow::Result<()> {
    let broker = Mosquitto::start()?;
    let recorder = Recorder::connect(broker.port(), "harness-test", &["/DEMESH/+/control"]).await?;
    recorder
        .publish("/DEMESH/d8a01d55a710/control", r#"{"cmd":"status"}"#)
        .await?;
    let hit = recorder
        .wait_for(Duration::from_secs(5), "the command", |m| {
            m.topic.ends_with("/control")
        })
        .await?;
    assert_eq!(hit.text(), r#"{"cmd":"status"}"#);
    Ok(())
}
