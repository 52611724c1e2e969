//! The service's configuration: TOML into typed structs (`deny_unknown_fields`, units in key names), validated before
//! anything starts.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;

/// The embedded default configuration (`hearth-community print-default-config`).
pub const DEFAULT_CONFIG: &str = r#"# Hearth community hub
[mqtt]
# The broker the homes' hubs publish to (their [upstream].broker).
broker = "mqtt://127.0.0.1:1883"
topic_prefix = "care"
# Instances with the same group share the homes' alerts (MQTT shared subscription); "" subscribes plainly
# (one instance only, or a broker without shared subscriptions).
share_group = "community"
client_id = "hearth-community-1"
# Acknowledgements and resolutions are resent this often until the home shows it applied them.
action_resend_s = 30

[database]
# sqlite://path/to/file.db or postgres://user@host/db
url = "sqlite://hearth-community.db"

[http]
listen = "127.0.0.1:8080"
# Secure cookies need HTTPS (or a loopback address, which browsers treat as secure).
secure_cookies = true
session_hours = 12

[homes]
# A home is silent when nothing (heartbeat or alert) arrived for this long.
silent_after_s = 300
# How often to look for silent homes.
check_every_s = 10
"#;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: String,
        key: &'static str,
        message: String,
    },
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub database: DatabaseConfig,
    pub http: HttpConfig,
    pub homes: HomesConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    pub broker: String,
    pub topic_prefix: String,
    pub share_group: String,
    pub client_id: String,
    pub action_resend_s: u64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub secure_cookies: bool,
    pub session_hours: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomesConfig {
    pub silent_after_s: u64,
    pub check_every_s: u64,
}

impl Config {
    /// Parses and validates `text` (read from `path`, used in errors only).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let p = path.display().to_string();
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: p.clone(),
            message: e.to_string(),
        })?;
        let invalid = |key, message: &str| ConfigError::Invalid {
            path: p.clone(),
            key,
            message: message.into(),
        };
        broker_addr(&cfg.mqtt.broker).map_err(|m| invalid("mqtt.broker", &m))?;
        if !hearth_protocol::json::is_valid_topic_id(&cfg.mqtt.topic_prefix) {
            return Err(invalid("mqtt.topic_prefix", "must be one topic level"));
        }
        if !cfg.mqtt.share_group.is_empty()
            && !hearth_protocol::json::is_valid_topic_id(&cfg.mqtt.share_group)
        {
            return Err(invalid("mqtt.share_group", "must be one topic level"));
        }
        if !(cfg.database.url.starts_with("sqlite:") || cfg.database.url.starts_with("postgres")) {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres://",
            ));
        }
        if cfg.homes.silent_after_s == 0 {
            return Err(invalid("homes.silent_after_s", "must be positive"));
        }
        if cfg.mqtt.action_resend_s == 0 {
            return Err(invalid("mqtt.action_resend_s", "must be positive"));
        }
        if cfg.homes.check_every_s == 0 {
            return Err(invalid("homes.check_every_s", "must be positive"));
        }
        if cfg.http.session_hours == 0 {
            return Err(invalid("http.session_hours", "must be positive"));
        }
        Ok(cfg)
    }

    /// The embedded default.
    pub fn default_config() -> Config {
        // The embedded default is tested to parse (config::tests).
        Config::parse(DEFAULT_CONFIG, Path::new("<embedded default>"))
            .unwrap_or_else(|e| panic!("embedded default configuration: {e}"))
    }
}

/// `mqtt://host:port` → (host, port). TLS is not supported yet (see docs/dashboards.md).
pub fn broker_addr(url: &str) -> Result<(String, u16), String> {
    let rest = url
        .strip_prefix("mqtt://")
        .ok_or_else(|| format!("{url:?}: expected mqtt://host:port"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("{url:?}: missing :port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{url:?}: bad port"))?;
    if host.is_empty() {
        return Err(format!("{url:?}: missing host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::default_config();
        assert_eq!(c.mqtt.topic_prefix, "care");
        assert_eq!(c.homes.silent_after_s, 300);
    }

    #[test]
    fn unknown_key_is_refused_with_its_name() {
        let text = DEFAULT_CONFIG.replace("[homes]", "[homes]\nsilent_after = 3");
        let e = Config::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("silent_after"), "{e}");
    }

    #[test]
    fn bad_broker_url_names_the_key() {
        let text = DEFAULT_CONFIG.replace("mqtt://127.0.0.1:1883", "tcp://x");
        let e = Config::parse(&text, Path::new("x.toml")).unwrap_err();
        assert!(e.to_string().contains("mqtt.broker"), "{e}");
    }
}
