//! TLS for the hub's MQTT clients (upstream and an external sensors broker): the CA to trust and, for a broker that
//! requires client certificates, the hub's own certificate and key. rustls with the ring provider; the server name
//! checked is the host of the `mqtts://` URL.

use std::path::Path;

use rumqttc::Transport;

use crate::config::Tls;

#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct TlsFileError {
    pub path: String,
    pub source: std::io::Error,
}

/// A rumqttc TLS transport from PEM files.
pub fn client_transport(t: &Tls) -> Result<Transport, TlsFileError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|source| TlsFileError {
            path: p.display().to_string(),
            source,
        })
    };
    let client_auth = match (&t.cert_file, &t.key_file) {
        (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
        _ => None,
    };
    // Fails only if a provider is installed already, which is the one we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(Transport::tls(read(&t.ca_file)?, client_auth, None))
}
