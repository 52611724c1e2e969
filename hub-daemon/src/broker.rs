//! An in-process MQTT broker (rumqttd) standing in for the community hub's broker in the demo.
//!
//! Not used for sensors: a broker acknowledges publishes on receipt, before the hub has committed them (see
//! [`crate::sources::endpoint`]). Bound to loopback; its in-memory commit log is sized small.

use std::net::{SocketAddr, TcpListener};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot find a free port on {0}: {1}")]
    Port(SocketAddr, std::io::Error),
    #[error("invalid embedded broker configuration: {0}")]
    Config(String),
    #[error("embedded broker failed to start: {0}")]
    Start(String),
}

/// Starts the broker on `listen` (port 0 picks a free port) and returns the address it listens on.
pub fn start_embedded(listen: SocketAddr, max_inflight: u16) -> Result<SocketAddr, BrokerError> {
    let addr = if listen.port() == 0 {
        // rumqttd cannot report the port it bound; reserve one, release it, hand it over.
        let l = TcpListener::bind(listen).map_err(|e| BrokerError::Port(listen, e))?;
        l.local_addr().map_err(|e| BrokerError::Port(listen, e))?
    } else {
        listen
    };
    let toml = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1024
max_outgoing_packet_count = {max_inflight}
max_segment_size = 4194304
max_segment_count = 4
[v4.1]
name = "hearth-sensors"
listen = "{addr}"
next_connection_delay_ms = 1
[v4.1.connections]
connection_timeout_ms = 60000
max_payload_size = 262144
max_inflight_count = {max_inflight}
dynamic_filters = true
"#
    );
    let config: rumqttd::Config =
        toml::from_str(&toml).map_err(|e| BrokerError::Config(e.to_string()))?;
    let mut broker = rumqttd::Broker::new(config);
    std::thread::Builder::new()
        .name("embedded-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Start(e.to_string()))?;
    // Ready when it accepts connections (bind errors are only logged by rumqttd, so check).
    for _ in 0..200 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return Ok(addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Err(BrokerError::Start(format!(
        "not accepting connections on {addr}"
    )))
}
