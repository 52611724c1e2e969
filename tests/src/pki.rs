//! A throw-away PKI made at test time (rcgen): a CA, server and client certificates (valid or already expired) and
//! a CRL, written as PEM files into a temporary directory for Mosquitto and the hub to load.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

/// A certificate and its key on disk.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The serial number, to revoke it.
    pub serial: u64,
}

/// A certificate authority whose files live in `dir`.
pub struct Ca {
    name: String,
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM), to trust.
    pub cert: PathBuf,
    next_serial: u64,
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    /// From yesterday for a year.
    Current,
    /// Expired yesterday.
    Expired,
}

impl Ca {
    /// A new self-signed CA named `name` (its files are prefixed with it).
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Hearth test CA {name}"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA");
        let cert = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&cert, issuer.pem()).expect("write CA");
        Ca {
            name: name.into(),
            dir: dir.to_owned(),
            issuer,
            cert,
            next_serial: 0x1000,
        }
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&mut self, validity: Validity) -> CertFiles {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        self.sign(params, "server", validity)
    }

    /// A server certificate for another name only (`mqtt.example.org`): a name mismatch for `localhost`.
    pub fn server_named(&mut self, name: &str) -> CertFiles {
        let params = CertificateParams::new(vec![name.to_string()]).expect("params");
        self.sign(params, &format!("server-{name}"), Validity::Current)
    }

    /// A client certificate whose common name is `cn` (Mosquitto's `use_identity_as_username` makes it the user).
    pub fn client(&mut self, cn: &str, validity: Validity) -> CertFiles {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        self.sign(params, &format!("client-{cn}"), validity)
    }

    /// A CRL revoking `revoked` (serial numbers), valid from yesterday for a week.
    pub fn crl(&self, revoked: &[u64]) -> PathBuf {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now - Duration::days(1),
            next_update: now + Duration::days(7),
            crl_number: SerialNumber::from_slice(&[1]),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|s| RevokedCertParams {
                    serial_number: serial(*s),
                    revocation_time: now - Duration::hours(1),
                    reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).expect("CRL");
        let path = self.dir.join(format!("{}-crl.pem", self.name));
        std::fs::write(&path, crl.pem().expect("CRL PEM")).expect("write CRL");
        path
    }

    fn sign(&mut self, mut params: CertificateParams, tag: &str, validity: Validity) -> CertFiles {
        self.next_serial += 1;
        let serial_no = self.next_serial;
        params.serial_number = Some(serial(serial_no));
        let now = OffsetDateTime::now_utc();
        (params.not_before, params.not_after) = match validity {
            Validity::Current => (now - Duration::days(1), now + Duration::days(365)),
            Validity::Expired => (now - Duration::days(365), now - Duration::days(1)),
        };
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        let base = self.dir.join(format!("{}-{tag}-{serial_no}", self.name));
        let files = CertFiles {
            cert: base.with_extension("pem"),
            key: base.with_extension("key"),
            serial: serial_no,
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }
}

fn serial(n: u64) -> SerialNumber {
    // A leading 0x01 keeps the DER integer positive and minimal whatever n is.
    let mut bytes = vec![0x01];
    bytes.extend_from_slice(&n.to_be_bytes());
    SerialNumber::from_slice(&bytes)
}

/// MQTT options for a device or hub connecting over TLS to `localhost:port`, trusting `ca`, presenting `client`.
pub fn tls_options(
    client_id: &str,
    port: u16,
    ca: &Path,
    client: Option<&CertFiles>,
) -> rumqttc::MqttOptions {
    let read = |p: &Path| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = rumqttc::MqttOptions::new(client_id, "localhost", port);
    opts.set_keep_alive(std::time::Duration::from_secs(30));
    opts.set_transport(rumqttc::Transport::tls(
        read(ca),
        client.map(|c| (read(&c.cert), read(&c.key))),
        None,
    ));
    opts
}

/// Connects and reports how it went: `Ok` on an accepting CONNACK, else what failed (TLS alert, refusal, reset).
/// A client certificate is rejected after the TLS 1.3 handshake, so the failure may surface on the first read.
pub async fn connect_outcome(
    opts: rumqttc::MqttOptions,
) -> (Result<(), String>, rumqttc::AsyncClient, rumqttc::EventLoop) {
    use rumqttc::{ConnectReturnCode, Event, Packet};
    let (client, mut events) = rumqttc::AsyncClient::new(opts, 16);
    let outcome = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(c))) if c.code == ConnectReturnCode::Success => {
                    return Ok(());
                }
                Ok(Event::Incoming(Packet::ConnAck(c))) => return Err(format!("{:?}", c.code)),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .unwrap_or_else(|_| Err("no answer within 10 s".into()));
    (outcome, client, events)
}
