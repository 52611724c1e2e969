//! Many homes at once through a private Mosquitto, on SQLite and on PostgreSQL: every home its own MQTT connection
//! (as real home hubs are), each sending heartbeats and two alerts (one of them revised); every alert revision is
//! stored once and acked once to the home that sent it, and the one home that stops sending heartbeats is the one
//! reported silent. `HEARTH_SCALE_HOMES` overrides the number of homes (500 by default, as in CI).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hearth_community::clock::{Clock, ManualClock};
use hearth_community::{live, silence};
use hearth_protocol::json;
use hearth_tests::community::{Community, Db, alert_json, heartbeat_json};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::postgres::Postgres;
use hearth_tests::wait::poll_until;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

const T0: i64 = 1_795_000_000_000;
const SILENT_HOME: usize = 7;

type Acks = Arc<Mutex<HashMap<(String, u32), (String, u32)>>>;

struct Home {
    client: AsyncClient,
    id: String,
    task: tokio::task::JoinHandle<()>,
}

/// Connects one home, subscribed to its own ack topic; returns once subscribed.
async fn connect_home(port: u16, id: String, acks: Acks) -> Home {
    let mut opts = MqttOptions::new(
        format!("scale-{id}-{:06x}", rand::random::<u32>() & 0xffffff),
        "127.0.0.1",
        port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let (sub_tx, mut sub_rx) = mpsc::channel::<()>(1);
    let topic = json::ack_topic("care", &id);
    let c = client.clone();
    let home = id.clone();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = c.try_subscribe(topic.clone(), QoS::AtLeastOnce);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = sub_tx.try_send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let ack = json::parse_ack(&p.payload).expect("well-formed ack");
                    let mut a = acks.lock().unwrap();
                    for x in ack.acks {
                        // (home the ack came to, how many times)
                        let e = a.entry((x.id, x.rev)).or_insert_with(|| (home.clone(), 0));
                        e.1 += 1;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), sub_rx.recv())
        .await
        .unwrap_or_else(|_| panic!("{id} not subscribed in 30 s"));
    Home { client, id, task }
}

async fn many_homes(db: Db) {
    let n: usize = std::env::var("HEARTH_SCALE_HOMES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let broker = Mosquitto::start();
    let clock = ManualClock::new(T0);
    let hub = Community::start_with(broker.port(), &db, Some(clock.clone()), |c| {
        c.homes.silent_after_s = 120;
        // Only the test's own checks, at the times it chooses.
        c.homes.check_every_s = 86_400;
    })
    .await;
    let acks: Acks = Arc::default();
    let mut homes = Vec::with_capacity(n);
    // Connect in waves of 50: a county's hubs do not all reconnect in the same millisecond either.
    for wave in (0..n).collect::<Vec<_>>().chunks(50) {
        let joins: Vec<_> = wave
            .iter()
            .map(|i| {
                tokio::spawn(connect_home(
                    broker.port(),
                    format!("home-{i:04}"),
                    acks.clone(),
                ))
            })
            .collect();
        for j in joins {
            homes.push(j.await.unwrap());
        }
    }
    // Everyone's first heartbeat at T0.
    for h in &homes {
        h.client
            .publish(
                json::heartbeat_topic("care", &h.id),
                QoS::AtMostOnce,
                false,
                heartbeat_json(&h.id, T0, 0),
            )
            .await
            .unwrap();
    }
    poll_until("every home known", Duration::from_secs(60), || async {
        let c = hub.store.counts().await.map_err(|e| e.to_string())?;
        if c.homes == n as i64 {
            Ok(())
        } else {
            Err(format!("{c:?}"))
        }
    })
    .await;
    // 200 s later everyone but one speaks again, with two alerts each (the first one revised).
    clock.advance(200_000);
    let now = clock.now_ms();
    for (i, h) in homes.iter().enumerate() {
        if i == SILENT_HOME {
            continue;
        }
        let p = format!("p-{i:04}");
        let topic = json::alert_topic("care", &p);
        for body in [
            alert_json(
                &format!("{}-a", h.id),
                1,
                &h.id,
                &p,
                "medium",
                "open",
                now - 5000,
                None,
            ),
            alert_json(
                &format!("{}-b", h.id),
                1,
                &h.id,
                &p,
                "low",
                "open",
                now - 4000,
                None,
            ),
            alert_json(
                &format!("{}-a", h.id),
                2,
                &h.id,
                &p,
                "high",
                "escalated",
                now - 3000,
                None,
            ),
        ] {
            h.client
                .publish(topic.clone(), QoS::AtLeastOnce, false, body)
                .await
                .unwrap();
        }
        h.client
            .publish(
                json::heartbeat_topic("care", &h.id),
                QoS::AtMostOnce,
                false,
                heartbeat_json(&h.id, now, 0),
            )
            .await
            .unwrap();
    }
    let expected = 3 * (n - 1);
    poll_until("every revision acked", Duration::from_secs(90), || async {
        let got = acks.lock().unwrap().len();
        if got >= expected {
            Ok(())
        } else {
            Err(format!("{got} of {expected} acked"))
        }
    })
    .await;
    let c = hub.store.counts().await.unwrap();
    assert_eq!(
        (c.alerts, c.revisions),
        (2 * (n as i64 - 1), expected as i64),
        "each revision stored once"
    );
    assert_eq!(c.quarantined, 0);
    {
        let a = acks.lock().unwrap();
        assert_eq!(a.len(), expected);
        for ((id, rev), (home, times)) in a.iter() {
            assert_eq!(*times, 1, "{id} rev {rev} acked {times} times");
            assert!(id.starts_with(home.as_str()), "{id} acked to {home}");
        }
    }
    let q = hub.store.queue(now, 5).await.unwrap();
    assert!(
        q.iter().all(|a| a.severity == "high" && a.rev == 2),
        "revised alerts lead the queue"
    );

    let live = live::channel();
    let silent = silence::check(&hub.store, now, 120, &live).await.unwrap();
    assert_eq!(silent, vec![format!("home-{SILENT_HOME:04}")]);
    for h in homes {
        h.task.abort();
    }
    hub.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_homes_every_alert_stored_once_acked_once_sqlite() {
    many_homes(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_homes_every_alert_stored_once_acked_once_postgres() {
    many_homes(Db::Postgres(Arc::new(Postgres::start()))).await;
}
