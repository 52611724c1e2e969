//! The whole community hub in one call: store, MQTT receiver, silent-home checks and the dashboard, all stopped by
//! one cancellation token. Used by the binary, the tests and the home hub's demo.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::AnyClock;
use crate::config::Config;
use crate::live::{self, LiveEvent};
use crate::receiver::{self, ReceiverError};
use crate::silence;
use crate::store::{Store, StoreError};
use crate::web::{self, AppState};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
    #[error("http.listen {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running community hub.
pub struct Running {
    /// Where the dashboard listens (the real port when configured with port 0).
    pub http: SocketAddr,
    pub store: Store,
    pub live: broadcast::Sender<LiveEvent>,
    /// Counts SubAcks: > 0 once the shared subscriptions are in place.
    pub subscribed: watch::Receiver<u64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Waits until the receiver's subscriptions are acknowledged by the broker (at most `timeout`).
    pub async fn wait_subscribed(&mut self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.subscribed.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits for every task to finish (after the shutdown token was cancelled).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
        self.store.close().await;
    }
}

/// Connects the store, binds the dashboard and starts every task.
pub async fn start(
    cfg: Config,
    clock: AnyClock,
    shutdown: CancellationToken,
) -> Result<Running, ServiceError> {
    let cfg = Arc::new(cfg);
    let store = Store::connect(&cfg.database.url, 8).await?;
    let listener = tokio::net::TcpListener::bind(cfg.http.listen)
        .await
        .map_err(|source| ServiceError::Listen {
            addr: cfg.http.listen,
            source,
        })?;
    let http = listener
        .local_addr()
        .map_err(|source| ServiceError::Listen {
            addr: cfg.http.listen,
            source,
        })?;
    let live = live::channel();
    let (client, eventloop) = receiver::mqtt_client(&cfg)?;
    let (sub_tx, subscribed) = watch::channel(0u64);
    let mut tasks = Vec::new();
    let rx = receiver::Receiver {
        cfg: cfg.clone(),
        store: store.clone(),
        clock: clock.clone(),
        client: client.clone(),
        live: live.clone(),
        subscribed: Some(sub_tx),
    };
    tasks.push(tokio::spawn(receiver::run(rx, eventloop, shutdown.clone())));
    tasks.push(tokio::spawn(silence::run(
        store.clone(),
        clock.clone(),
        cfg.homes.silent_after_s,
        Duration::from_secs(cfg.homes.check_every_s),
        live.clone(),
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(crate::resend::run(
        store.clone(),
        client.clone(),
        cfg.mqtt.topic_prefix.clone(),
        clock.clone(),
        cfg.mqtt.action_resend_s,
        shutdown.clone(),
    )));
    let state = AppState {
        cfg: cfg.clone(),
        store: store.clone(),
        clock,
        mqtt: client,
        live: live.clone(),
        shutdown: shutdown.clone(),
    };
    tasks.push(tokio::spawn(async move {
        if let Err(e) = web::serve(listener, state).await {
            tracing::error!(error = %e, "dashboard server failed");
        }
    }));
    tracing::info!(%http, "community hub dashboard listening");
    Ok(Running {
        http,
        store,
        live,
        subscribed,
        tasks,
    })
}
