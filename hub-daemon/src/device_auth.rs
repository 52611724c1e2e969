//! Device authentication on the sensors side: who may connect to the embedded endpoint and where they may publish.
//!
//! `[sensors.auth]` turns it on: every client must log in with username = its device id and that device's password,
//! checked against an argon2id hash (PHC string) from the configuration or a credentials file. An authenticated
//! device may publish only to `{prefix}/readings/{its id}` and `{prefix}/frames/{its id}`, and subscribe only to
//! `{prefix}/frame-acks/{its id}` — the policy a Mosquitto ACL `pattern write hub/readings/%u` expresses.
//!
//! Why argon2id and not a salted SHA-256: device passwords are set by technicians, and a home hub is a box someone
//! can carry off; a memory-hard hash keeps a stolen credentials file from yielding the passwords of the other devices
//! of the same fleet. The cost (one hash per *connection*, not per message, on a blocking thread) is paid rarely.
//!
//! Without `[sensors.auth]` the endpoint accepts any client, so it must then listen on loopback only (the default):
//! the configuration refuses a non-loopback `sensors.listen` without device credentials.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use serde::Deserialize;

/// Refused CONNECTs, by `reason` (`no_credentials`, `unknown_device`, `bad_password`).
pub const CONNECTIONS_REFUSED: &str = "hearth_sensor_connections_refused_total";
/// PUBLISHes to another device's topic (quarantined as `bad_topic`) and SUBSCRIBEs refused, by `kind`.
pub const ACCESS_DENIED: &str = "hearth_sensor_access_denied_total";

/// `[sensors.auth]`: device credentials for the embedded endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorsAuth {
    /// A file of `device_id:$argon2id$…` lines (`#` starts a comment), e.g. written by `hearthd hash-password`.
    pub credentials_file: Option<PathBuf>,
    /// Inline credentials: device id → argon2id PHC hash.
    #[serde(default)]
    pub credentials: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}: {message}")]
    Line {
        file: String,
        line: usize,
        message: String,
    },
}

/// Why a CONNECT was refused (the metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoCredentials,
    UnknownDevice,
    BadPassword,
}

impl Refusal {
    pub const fn as_str(self) -> &'static str {
        match self {
            Refusal::NoCredentials => "no_credentials",
            Refusal::UnknownDevice => "unknown_device",
            Refusal::BadPassword => "bad_password",
        }
    }
}

/// Device id → password hash, loaded once at start.
#[derive(Debug, Clone)]
pub struct Credentials {
    hashes: HashMap<String, String>,
    /// Bounds concurrent argon2 verifications (19 MiB each): a flood of logins queues instead of exhausting memory.
    slots: Arc<tokio::sync::Semaphore>,
}

/// Logins verified at once; more wait their turn (the CONNECT timeout still applies to the client).
const VERIFY_CONCURRENCY: usize = 2;

/// Verified against for an unknown device, so that "no such device" and "wrong password" take the same time.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1w7Y9bOeXIdvKxjUw8YNxx3lZiQBfx5Vw1xzQ+5yM4Y";

impl Credentials {
    /// Inline credentials plus the credentials file's, each hash checked to be a PHC string.
    pub fn load(auth: &SensorsAuth) -> Result<Credentials, CredentialsError> {
        let mut hashes = HashMap::new();
        for (device, hash) in &auth.credentials {
            check_entry(device, hash).map_err(|message| CredentialsError::Line {
                file: "sensors.auth.credentials".into(),
                line: 0,
                message,
            })?;
            hashes.insert(device.clone(), hash.clone());
        }
        if let Some(path) = &auth.credentials_file {
            let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Read {
                file: path.display().to_string(),
                source,
            })?;
            for (device, hash) in parse_file(&text, path)? {
                hashes.insert(device, hash);
            }
        }
        Ok(Credentials {
            hashes,
            slots: Arc::new(tokio::sync::Semaphore::new(VERIFY_CONCURRENCY)),
        })
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Checks a login; returns the device id it authenticates. Slow on purpose (argon2): call it off the runtime.
    pub fn verify(&self, username: &str, password: &[u8]) -> Result<String, Refusal> {
        let (hash, known) = match self.hashes.get(username) {
            Some(h) => (h.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let ok = PasswordHash::new(hash)
            .map(|h| Argon2::default().verify_password(password, &h).is_ok())
            .unwrap_or(false);
        match (known, ok) {
            (false, _) => Err(Refusal::UnknownDevice),
            (true, false) => Err(Refusal::BadPassword),
            (true, true) => Ok(username.to_string()),
        }
    }

    /// [`Self::verify`] on a blocking thread (argon2 takes tens of milliseconds by design).
    pub async fn verify_async(
        self: &Arc<Self>,
        login: Option<(String, String)>,
    ) -> Result<String, Refusal> {
        let Some((user, password)) = login else {
            return Err(Refusal::NoCredentials);
        };
        let Ok(_slot) = self.slots.acquire().await else {
            return Err(Refusal::BadPassword);
        };
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.verify(&user, password.as_bytes()))
            .await
            .unwrap_or(Err(Refusal::BadPassword))
    }
}

/// An argon2id PHC hash of `password` with a fresh random salt and the crate's default (OWASP) parameters.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// `hearthd hash-password DEVICE`: reads the password (first line of stdin), prints `DEVICE:$argon2id$…`.
pub fn hash_password_cmd(device: &str) -> std::process::ExitCode {
    let mut password = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut password) {
        eprintln!("cannot read the password: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let password = password.trim_end_matches(['\r', '\n']);
    if password.is_empty() {
        eprintln!("expected the password on stdin");
        return std::process::ExitCode::from(2);
    }
    match hash_password(password).and_then(|h| check_entry(device, &h).map(|()| h)) {
        Ok(h) => {
            println!("{device}:{h}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::ExitCode::from(2)
        }
    }
}

fn parse_file(text: &str, path: &Path) -> Result<Vec<(String, String)>, CredentialsError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |message: String| CredentialsError::Line {
            file: path.display().to_string(),
            line: i + 1,
            message,
        };
        let (device, hash) = line
            .split_once(':')
            .ok_or_else(|| err("expected `device_id:$argon2id$…`".into()))?;
        check_entry(device, hash).map_err(err)?;
        out.push((device.to_string(), hash.to_string()));
    }
    Ok(out)
}

fn check_entry(device: &str, hash: &str) -> Result<(), String> {
    if device.is_empty()
        || device.contains(['/', '+', '#', ':'])
        || device.contains(char::is_whitespace)
    {
        return Err(format!("device id {device:?} is not a valid topic level"));
    }
    let parsed =
        PasswordHash::new(hash).map_err(|e| format!("device {device}: not a PHC hash ({e})"))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(format!(
            "device {device}: expected an argon2id hash, got {}",
            parsed.algorithm
        ));
    }
    Ok(())
}

/// Whether `device` may publish to `topic`: only its own readings and frames, and check-ins for the patient it is
/// bound to (`patient`; the home tablet a carer uses).
pub fn may_publish(prefix: &str, device: &str, patient: Option<&str>, topic: &str) -> bool {
    let rest = topic.strip_prefix(prefix).and_then(|r| r.strip_prefix('/'));
    match rest.and_then(|r| r.split_once('/')) {
        Some(("readings" | "frames", d)) => d == device,
        Some(("checkins", p)) => patient == Some(p),
        _ => false,
    }
}

/// Whether `device` may subscribe to `filter`: only its own acknowledgement frames, and the reminders of the
/// patient it is bound to.
pub fn may_subscribe(prefix: &str, device: &str, patient: Option<&str>, filter: &str) -> bool {
    filter == format!("{prefix}/frame-acks/{device}")
        || patient.is_some_and(|p| filter == format!("{prefix}/reminders/{p}"))
}

/// Configuration checks for `[sensors]` security (called from `Config::validate`): returns (key, what is expected).
pub fn validate(sensors: &crate::config::Sensors) -> Result<(), (String, String)> {
    let err = |k: &str, m: &str| Err((k.to_string(), m.to_string()));
    let tls_url = sensors.broker.starts_with("mqtts://");
    if tls_url && sensors.tls.is_none() {
        return err(
            "sensors.tls",
            "mqtts:// needs [sensors.tls] with ca_file (and cert_file/key_file for a broker that requires client certificates)",
        );
    }
    if !tls_url && sensors.tls.is_some() {
        return err(
            "sensors.tls",
            "[sensors.tls] is used only with broker = \"mqtts://host:port\"",
        );
    }
    if let Some(auth) = &sensors.auth {
        if sensors.broker != "embedded" {
            return err(
                "sensors.auth",
                "device credentials apply to the embedded endpoint; an external broker authenticates devices itself",
            );
        }
        for (device, hash) in &auth.credentials {
            check_entry(device, hash)
                .map_err(|m| (format!("sensors.auth.credentials.{device}"), m))?;
        }
        if auth.credentials.is_empty() && auth.credentials_file.is_none() {
            return err("sensors.auth", "expected credentials or credentials_file");
        }
    } else if sensors.broker == "embedded" && !sensors.listen.ip().is_loopback() {
        return err(
            "sensors.listen",
            "a non-loopback address lets any device on the network publish: add [sensors.auth] with device credentials",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the PHC string carries them, so verification needs no configuration.
    fn quick_hash(password: &str) -> String {
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let a = Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        a.hash_password(password.as_bytes(), &salt)
            .unwrap()
            .to_string()
    }

    fn creds() -> Credentials {
        let mut auth = SensorsAuth::default();
        auth.credentials
            .insert("dev-1".into(), quick_hash("s3cret-1"));
        Credentials::load(&auth).unwrap()
    }

    #[test]
    fn the_right_password_authenticates_the_device() {
        assert_eq!(creds().verify("dev-1", b"s3cret-1"), Ok("dev-1".into()));
    }

    #[test]
    fn a_wrong_password_or_an_unknown_device_is_refused() {
        let c = creds();
        assert_eq!(c.verify("dev-1", b"s3cret-2"), Err(Refusal::BadPassword));
        assert_eq!(c.verify("dev-9", b"s3cret-1"), Err(Refusal::UnknownDevice));
        assert_eq!(c.verify("", b""), Err(Refusal::UnknownDevice));
    }

    #[test]
    fn the_dummy_hash_is_a_valid_argon2id_hash() {
        check_entry("x", DUMMY_HASH).unwrap();
    }

    #[test]
    fn hash_password_round_trips() {
        let h = hash_password("pw").unwrap();
        let mut auth = SensorsAuth::default();
        auth.credentials.insert("d".into(), h);
        assert!(Credentials::load(&auth).unwrap().verify("d", b"pw").is_ok());
    }

    #[test]
    fn credentials_file_errors_name_the_line() {
        let good = quick_hash("a");
        let text = format!("# devices\n\ndev-1:{good}\ndev-2:plaintext\n");
        let e = parse_file(&text, Path::new("devices.passwd")).unwrap_err();
        assert!(
            e.to_string().starts_with("devices.passwd:4: device dev-2"),
            "{e}"
        );
        let sha = "$5$rounds=1000$salt$abc";
        let e = parse_file(&format!("d:{sha}\n"), Path::new("f")).unwrap_err();
        assert!(e.to_string().contains("f:1"), "{e}");
        let ok = parse_file(&format!("dev-1:{good}\n"), Path::new("f")).unwrap();
        assert_eq!(ok.len(), 1);
    }

    #[test]
    fn a_device_publishes_and_subscribes_only_under_its_own_id() {
        let p = Some("p-1");
        assert!(may_publish("hub", "dev-1", p, "hub/readings/dev-1"));
        assert!(may_publish("hub", "dev-1", p, "hub/frames/dev-1"));
        assert!(!may_publish("hub", "dev-1", p, "hub/readings/dev-2"));
        assert!(!may_publish("hub", "dev-1", p, "hub/readings/dev-1/x"));
        assert!(!may_publish("hub", "dev-1", p, "hub/frame-acks/dev-1"));
        assert!(!may_publish("hub", "dev-1", p, "other/readings/dev-1"));
        assert!(
            may_publish("hub", "dev-1", p, "hub/checkins/p-1"),
            "its patient's check-ins"
        );
        assert!(!may_publish("hub", "dev-1", p, "hub/checkins/p-2"));
        assert!(
            !may_publish("hub", "dev-1", None, "hub/checkins/p-1"),
            "an unbound device"
        );
        assert!(may_subscribe("hub", "dev-1", p, "hub/frame-acks/dev-1"));
        assert!(may_subscribe("hub", "dev-1", p, "hub/reminders/p-1"));
        assert!(!may_subscribe("hub", "dev-1", p, "hub/reminders/p-2"));
        assert!(!may_subscribe("hub", "dev-1", p, "hub/frame-acks/+"));
        assert!(!may_subscribe("hub", "dev-1", p, "hub/#"));
        assert!(!may_subscribe("hub", "dev-1", p, "hub/readings/dev-2"));
    }

    fn config(sensors: &str) -> Result<crate::config::Config, crate::config::ConfigError> {
        let raw = format!("[home]\nid = \"h\"\n[sensors]\n{sensors}\n");
        crate::config::Config::parse(&raw, Path::new("t.toml"))
    }

    #[test]
    fn the_endpoint_listens_beyond_loopback_only_with_device_credentials() {
        let e = config("listen = \"0.0.0.0:1884\"").unwrap_err();
        assert_eq!(e.key, "sensors.listen");
        assert_eq!(e.line, Some(4), "{e}");
        let with_auth = format!(
            "listen = \"0.0.0.0:1884\"\n[sensors.auth]\ncredentials = {{ dev-1 = \"{}\" }}",
            quick_hash("pw")
        );
        assert!(config(&with_auth).is_ok());
        let e = config("[sensors.auth]\ncredentials = { dev-1 = \"plain\" }").unwrap_err();
        assert!(e.message.contains("not a PHC hash"), "{e}");
    }

    #[test]
    fn an_mqtts_sensors_broker_needs_tls_settings() {
        let e = config("broker = \"mqtts://b:8883\"").unwrap_err();
        assert_eq!(e.key, "sensors.tls");
        assert!(config("broker = \"mqtts://b:8883\"\n[sensors.tls]\nca_file = \"ca.pem\"").is_ok());
        let e =
            config("broker = \"mqtt://b:1883\"\n[sensors.tls]\nca_file = \"ca.pem\"").unwrap_err();
        assert_eq!(e.key, "sensors.tls");
        let e = config(&format!(
            "broker = \"mqtt://b:1883\"\n[sensors.auth]\ncredentials = {{ d = \"{}\" }}",
            quick_hash("x")
        ))
        .unwrap_err();
        assert_eq!(e.key, "sensors.auth");
    }
}
