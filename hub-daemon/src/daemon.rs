//! Wiring: starts the store, the embedded broker, the core loop, the sources, the upstream publisher and HTTP, and
//! stops them on a shutdown token (so tests and the demo can run a daemon in-process on port 0).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{self, Config};
use crate::core::Core;
use crate::gate::Registry;
use crate::http::{self, HttpState};
use crate::sources::endpoint::{self, EndpointConfig};
use crate::sources::mqtt::{self, MqttSourceConfig};
use crate::store::Store;
use crate::{telemetry, upstream};

/// Addresses the running daemon bound (written to the ready file).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Bound {
    pub pid: u32,
    pub http: SocketAddr,
    pub sensors_broker: SocketAddr,
}

/// Runs until `shutdown` is cancelled or a component fails. `on_ready` is called once everything is up.
pub async fn run<C: Clock + Clone>(
    cfg: Config,
    clock: C,
    shutdown: CancellationToken,
    on_ready: impl FnOnce(&Bound) + Send,
) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let metrics = telemetry::init_metrics();
    let store = Store::open(&cfg.storage.path)
        .await
        .with_context(|| format!("opening database {}", cfg.storage.path.display()))?;

    if crate::store::audit::record_config(&store, &cfg.text, clock.now_ms()).await? {
        tracing::info!("configuration changed since the last run; recorded in the audit chain");
    }
    let (core_tx, core_rx) = mpsc::channel(cfg.storage.max_batch * 4);
    let (control_tx, control_rx) = mpsc::channel(1024);
    let outbox_changed = Arc::new(Notify::new());
    // Publish whatever a previous run left undelivered as soon as the link is up.
    outbox_changed.notify_one();
    let (notice_tx, notice_rx) = mpsc::channel(crate::sources::notices::CAPACITY);
    let core = Core::load(
        cfg.clone(),
        clock.clone(),
        store.clone(),
        outbox_changed.clone(),
    )
    .await?
    .with_notices(notice_tx);
    let stop = shutdown.child_token();
    let mut core_task = tokio::spawn(core.run(core_rx, control_rx, stop.clone()));

    let registry = Arc::new(Registry::from_config(&cfg));
    let (ready_tx, ready_rx) = oneshot::channel();
    let (sensors, source) = if cfg.sensors.broker == "embedded" {
        let listener = endpoint::bind(cfg.sensors.listen)
            .await
            .with_context(|| format!("sensors.listen: cannot bind {}", cfg.sensors.listen))?;
        let addr = listener.local_addr()?;
        let endpoint_cfg = EndpointConfig {
            prefix: cfg.sensors.topic_prefix.clone(),
            max_inflight: cfg.sensors.max_inflight as usize,
            registry,
        };
        let _ = ready_tx.send(());
        let task = tokio::spawn(endpoint::serve(
            listener,
            endpoint_cfg,
            clock.clone(),
            core_tx.clone(),
            notice_rx,
            stop.clone(),
        ));
        (addr, task)
    } else {
        let (host, port, _) =
            config::broker_addr(&cfg.sensors.broker).map_err(|e| anyhow!("sensors.broker: {e}"))?;
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await?
            .next()
            .ok_or_else(|| anyhow!("sensors.broker: cannot resolve {host}"))?;
        let source_cfg = MqttSourceConfig {
            host,
            port,
            client_id: format!("hearthd-{}-sensors", cfg.home.id),
            prefix: cfg.sensors.topic_prefix.clone(),
            max_inflight: cfg.sensors.max_inflight,
            registry,
        };
        let task = tokio::spawn(mqtt::run(
            source_cfg,
            clock.clone(),
            core_tx.clone(),
            notice_rx,
            ready_tx,
            stop.clone(),
        ));
        (addr, task)
    };
    let ble = if cfg.ble.runs() {
        Some(spawn_ble(&cfg, clock.clone(), &store, core_tx.clone(), stop.clone()).await?)
    } else {
        None
    };
    let upstream = tokio::spawn(upstream::run(
        cfg.clone(),
        store.clone(),
        clock.clone(),
        control_tx,
        outbox_changed,
        stop.clone(),
    ));
    let http_core_tx = core_tx.clone();
    drop(core_tx);

    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .with_context(|| format!("http.listen: cannot bind {}", cfg.http.listen))?;
    let http_addr = listener.local_addr()?;
    let app = http::router(HttpState {
        cfg: cfg.clone(),
        store: store.clone(),
        metrics,
        ready: ready.clone(),
        ble: ble.as_ref().map(|(h, _)| h.clone()),
        core: http_core_tx,
        now: {
            let clock = clock.clone();
            Arc::new(move || clock.now_ms())
        },
    });
    let http_stop = stop.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(http_stop.cancelled_owned())
            .await
    });

    tokio::select! {
        r = ready_rx => r.map_err(|_| anyhow!("sensor source stopped before subscribing"))?,
        _ = tokio::time::sleep(Duration::from_secs(30)) => {
            stop.cancel();
            return Err(anyhow!("sensor broker {sensors} not reachable within 30 s"));
        }
        _ = shutdown.cancelled() => {}
    }
    ready.store(true, Ordering::SeqCst);
    let bound = Bound {
        pid: std::process::id(),
        http: http_addr,
        sensors_broker: sensors,
    };
    tracing::info!(http = %bound.http, sensors = %bound.sensors_broker, home = %cfg.home.id, "hearthd ready");
    on_ready(&bound);

    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        r = &mut core_task => match r {
            Ok(Ok(())) if shutdown.is_cancelled() => Ok(()),
            Ok(Ok(())) => Err(anyhow!("core loop stopped")),
            Ok(Err(e)) => Err(anyhow!(e).context("core loop failed")),
            Err(e) => Err(anyhow!(e).context("core loop panicked")),
        },
    };
    stop.cancel();
    let _ = source.await;
    if let Some((_, task)) = ble {
        let _ = task.await;
    }
    let _ = upstream.await;
    let _ = http.await;
    if !core_task.is_finished() {
        let _ = core_task.await;
    }
    store.close().await;
    tracing::info!("hearthd stopped");
    result
}

/// Starts the Bluetooth source on the first BlueZ adapter.
async fn spawn_ble<C: Clock + Clone>(
    cfg: &Config,
    clock: C,
    store: &Store,
    core_tx: mpsc::Sender<crate::core::CoreInput>,
    stop: CancellationToken,
) -> anyhow::Result<(
    Arc<crate::sources::ble::health::BleHealth>,
    tokio::task::JoinHandle<()>,
)> {
    use crate::sources::ble;
    let sink = Arc::new(ble::sink::Sink::new(core_tx, clock, store).await?);
    let health = Arc::new(ble::health::BleHealth::new(cfg.ble.devices.iter().map(
        |d| {
            (
                d.id.clone(),
                d.address.to_ascii_uppercase(),
                d.profile.as_str(),
            )
        },
    )));
    let ble_cfg = Arc::new(cfg.ble.clone());
    let h = health.clone();
    // BlueZ may come up after the hub (or restart): keep trying rather than refuse to start the whole hub.
    let task = tokio::spawn(async move {
        let mut backoff = ble::Backoff::new(
            Duration::from_millis(ble_cfg.reconnect_min_ms),
            Duration::from_millis(ble_cfg.reconnect_max_ms),
        );
        let radio = loop {
            match ble::bluez::BluezCentral::first_adapter().await {
                Ok(r) => break r.only(ble_cfg.devices.iter().map(|d| d.address.clone())),
                Err(e) => {
                    tracing::error!(error = %e, "no usable Bluetooth adapter (BlueZ on the system bus); retrying");
                    metrics::counter!(ble::health::ADAPTER_UNAVAILABLE).increment(1);
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(backoff.next_delay()) => {}
                    }
                }
            }
        };
        ble::run(radio, ble_cfg, sink, h, stop).await
    });
    Ok((health, task))
}

/// Writes the ready file atomically (temp file + rename), so a watcher never reads half of it.
pub fn write_ready_file(path: &PathBuf, bound: &Bound) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec(bound)?)?;
    std::fs::rename(tmp, path)
}
