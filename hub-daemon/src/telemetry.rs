//! Logs and metrics, set up once at the binary's edge. Metric names are `noun_verb_total` with units; labels never
//! carry patient identifiers.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

pub const READINGS_RECEIVED: &str = "hearth_readings_received_total";
pub const READINGS_COMMITTED: &str = "hearth_readings_committed_total";
pub const READINGS_DUPLICATE: &str = "hearth_readings_duplicate_total";
pub const READINGS_QUARANTINED: &str = "hearth_readings_quarantined_total";
pub const READINGS_STALE: &str = "hearth_readings_stale_total";
pub const READINGS_EVICTED: &str = "hearth_readings_evicted_total";
pub const ACKS_FAILED: &str = "hearth_source_acks_failed_total";
pub const ALERTS_RAISED: &str = "hearth_alerts_raised_total";
pub const ALERT_MESSAGES_DELIVERED: &str = "hearth_alert_messages_delivered_total";
pub const UPSTREAM_RESENDS: &str = "hearth_upstream_resends_total";
pub const UPSTREAM_CONNECTED: &str = "hearth_upstream_connected";
pub const UPSTREAM_MESSAGES_REJECTED: &str = "hearth_upstream_messages_rejected_total";
pub const OUTBOX_DEPTH: &str = "hearth_outbox_depth";
pub const OUTBOX_OLDEST_AGE: &str = "hearth_outbox_oldest_age_seconds";
pub const COMMIT_SECONDS: &str = "hearth_commit_seconds";
pub const ALERTS_OPEN: &str = "hearth_alerts_open";
pub const ACTIONS_APPLIED: &str = "hearth_nurse_actions_applied_total";
pub const ACTIONS_IGNORED: &str = "hearth_nurse_actions_ignored_total";
pub const CHECKINS_RECEIVED: &str = "hearth_checkins_received_total";
pub const CHECKINS_REFUSED: &str = "hearth_checkins_refused_total";
pub const CHECKINS_DUPLICATE: &str = "hearth_checkins_duplicate_total";
pub const TRENDS_DETECTED: &str = "hearth_trends_detected_total";
pub const REMINDERS_SENT: &str = "hearth_reminders_sent_total";
pub const NOTICES_DROPPED: &str = "hearth_notices_dropped_total";
pub const BASELINES_APPLIED: &str = "hearth_baselines_applied_total";
pub const BASELINES_REFUSED: &str = "hearth_baselines_refused_total";
pub const ALERTS_FLAPPING: &str = "hearth_alerts_flapping_total";
/// NEWS2 parameter values by `verdict`: `held` (would change the subscore), `confirmed`, `refuted`.
pub const NEWS2_VALUES: &str = "hearth_news2_values_total";

/// Human-readable logs by default, JSON on request; `RUST_LOG` filters.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttd=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // rumqttd logs every connection (and our readiness probe) at info/error; its failures surface as ours.
    // A second initialisation (tests, demo) is harmless: keep the first.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Installs the process-wide Prometheus recorder (once) and returns its render handle.
pub fn init_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Fails only if another recorder is installed; then this handle renders nothing, which is visible.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}
