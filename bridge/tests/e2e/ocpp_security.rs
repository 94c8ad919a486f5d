//! End to end, OCPP security profiles over TLS with certificates made in the test: profile 2
//! (TLS + basic auth, the user being the charge point's identity: a bay whose identity the
//! backend does not know is refused) and profile 3 (a client certificate, no password).

use std::path::Path;
use std::time::Duration;

use ctrl22_testkit::sim::Simulator;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};

use crate::mqtt_site::MqttSite;
use crate::ocpp_peer::{Peer, PeerProcess};
use crate::ocpp_session::enable_ocpp;

/// A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in `dir`.
fn make_certificates(dir: &Path) -> anyhow::Result<()> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL takes a certificate whose subject is its issuer's for
    // self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ctrl22 test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let server_key = KeyPair::generate()?;
    let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()])?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server = server_params.signed_by(&server_key, &ca, &ca_key)?;
    let client_key = KeyPair::generate()?;
    let mut client_params = CertificateParams::new(vec!["ctrl22-bay".to_owned()])?;
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    client_params
        .distinguished_name
        .push(DnType::CommonName, "ctrl22-bay");
    let client = client_params.signed_by(&client_key, &ca, &ca_key)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), server.pem())?;
    std::fs::write(dir.join("server.key"), server_key.serialize_pem())?;
    std::fs::write(dir.join("client.pem"), client.pem())?;
    std::fs::write(dir.join("client.key"), client_key.serialize_pem())?;
    Ok(())
}

fn arg(path: &Path) -> String {
    path.display().to_string()
}

async fn boots(cs: &PeerProcess, cp: &str) -> anyhow::Result<()> {
    cs.wait_for(Duration::from_secs(20), "BootNotification over TLS", |l| {
        l["kind"] == "recv" && l["cp"] == cp && l["action"] == "BootNotification"
    })
    .await
    .map(|_| ())
}

pub async fn tls_with_basic_auth(peer: Peer) -> anyhow::Result<()> {
    let certs = tempfile::tempdir()?;
    make_certificates(certs.path())?;
    let site = MqttSite::start().await?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 2, 3);
    let (known, unknown) = (&simulator.devs[0], &simulator.devs[1]);
    let cs = PeerProcess::start(
        &peer,
        &[
            "--tls-cert".into(),
            arg(&certs.path().join("server.pem")),
            "--tls-key".into(),
            arg(&certs.path().join("server.key")),
            "--basic-auth".into(),
            format!("{known}:s3cret-pass"),
        ],
    )
    .await?;
    let extra = format!(
        "security_profile = 2\npassword = \"s3cret-pass\"\nca_file = \"{}\"",
        certs.path().join("ca.pem").display()
    );
    enable_ocpp(&site, &cs.url(), &extra)?;
    let mut bridge = site.bridge()?;
    boots(&cs, known).await?;
    // The other bay's identity is not the backend's user: refused (HTTP 401), never connected.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !cs.lines()
            .iter()
            .any(|l| l["cp"] == unknown.as_str() && l["kind"] != "rejected"),
        "{:#?}",
        cs.lines()
    );
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

pub async fn tls_with_client_certificate(peer: Peer) -> anyhow::Result<()> {
    let certs = tempfile::tempdir()?;
    make_certificates(certs.path())?;
    let site = MqttSite::start().await?;
    let simulator = Simulator::start(&site.broker, &site.mesh, 1, 3);
    let cs = PeerProcess::start(
        &peer,
        &[
            "--tls-cert".into(),
            arg(&certs.path().join("server.pem")),
            "--tls-key".into(),
            arg(&certs.path().join("server.key")),
            "--client-ca".into(),
            arg(&certs.path().join("ca.pem")),
        ],
    )
    .await?;
    let extra = format!(
        "security_profile = 3\nca_file = \"{ca}\"\nclient_cert = \"{cert}\"\nclient_key = \"{key}\"",
        ca = certs.path().join("ca.pem").display(),
        cert = certs.path().join("client.pem").display(),
        key = certs.path().join("client.key").display(),
    );
    enable_ocpp(&site, &cs.url(), &extra)?;
    let mut bridge = site.bridge()?;
    boots(&cs, &simulator.devs[0]).await?;
    bridge.kill();
    simulator.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_over_tls_with_basic_auth() -> anyhow::Result<()> {
    tls_with_basic_auth(Peer::python()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_ocpp_backend_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    tls_with_client_certificate(Peer::python()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_over_tls_with_basic_auth() -> anyhow::Result<()> {
    tls_with_basic_auth(Peer::npm()?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npm_ocpp_rpc_backend_over_tls_with_a_client_certificate() -> anyhow::Result<()> {
    tls_with_client_certificate(Peer::npm()?).await
}
