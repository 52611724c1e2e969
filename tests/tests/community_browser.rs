//! The whole loop in a real browser: headless Chromium logs in to the community hub's dashboard, sees a new alert
//! from a real `hearthd` appear live (no reload), a nurse acknowledges it, and the home hub records the
//! acknowledgement (its alert turns `acknowledged`, and that revision comes back to the community hub).
//! Screenshots of the queue and the patient page go to `target/screenshots/` for review.
//!
//! Needs `cargo build -p hearthd` first (as every hub test does) and Debian's `chromium`.

use std::time::Duration;

use hearth_tests::browser::{Browser, screenshot_dir};
use hearth_tests::community::{Community, Db};
use hearth_tests::hub::{Hub, HubConfig, Rule};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::sensors::SensorSim;
use hearth_tests::wait::poll_until;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_sees_a_new_alert_live_and_acknowledges_it_end_to_end() {
    let broker = Mosquitto::start();
    let community = Community::start(broker.port(), &Db::Sqlite, None).await;
    community
        .add_user("nurse1", "nurse", "nurse-password")
        .await;
    let hub = Hub::start(
        HubConfig::new(broker.port())
            .patient("p-0001", &["oximeter-1"])
            .rule(Rule::below("spo2", 92.0, "high")),
    )
    .await;
    let browser = Browser::launch().await;
    let page = browser.new_page().await;
    let base = format!("http://{}", community.http);

    page.goto(&format!("{base}/")).await;
    assert_eq!(
        page.eval("location.pathname").await.unwrap(),
        "/login",
        "logged out → login page"
    );
    page.navigating(
        "document.getElementById('username').value = 'nurse1';\
         document.getElementById('password').value = 'nurse-password';\
         document.getElementById('login').click()",
    )
    .await;
    assert_eq!(
        page.eval("location.pathname").await.unwrap(),
        "/",
        "logged in → queue"
    );
    assert_eq!(
        page.eval("document.querySelectorAll('tr[data-alert]').length")
            .await
            .unwrap(),
        0
    );
    // The live connection is open before the alert exists, and the page is marked to prove it never reloads.
    page.wait_until(
        "window.hearthEvents !== undefined && window.hearthEvents.readyState === 1",
        WAIT,
    )
    .await;
    page.eval("window.__samePage = true").await.unwrap();

    let sensors = SensorSim::connect(hub.sensors_port(), "browser-test-oximeter").await;
    let t = time::OffsetDateTime::now_utc() - time::Duration::seconds(5);
    let tag = sensors.publish_reading(
        "oximeter-1",
        1,
        Some(t),
        json!({"spo2": 88, "heart_rate": 104}),
    );
    sensors.wait_acked(&tag, 1, WAIT).await;

    page.wait_until(
        "document.querySelectorAll('tr[data-alert]').length === 1 && window.__samePage === true",
        WAIT,
    )
    .await;
    let status = page
        .eval("document.getElementById('queue-status').textContent")
        .await
        .unwrap();
    assert_eq!(
        status, "Queue updated: 1 open incident.",
        "announced to screen readers"
    );
    let alert_id = page
        .eval("document.querySelector('tr[data-alert]').dataset.alert")
        .await
        .unwrap();
    let alert_id = alert_id.as_str().unwrap().to_string();
    let shots = screenshot_dir();
    page.screenshot(&shots.join("queue.png")).await;

    // Keyboard path: the Acknowledge button takes focus and Enter/click submits its form.
    page.navigating(
        "const b = document.querySelector('button[id^=\"ack-\"]'); b.focus(); b.click()",
    )
    .await;
    assert_eq!(page.eval("location.pathname").await.unwrap(), "/");

    // The home hub records it: its alert is now acknowledged (so it stops escalating)…
    let hub_http = hub.http_addr();
    poll_until("the home hub's alert to be acknowledged", WAIT, || async {
        let alerts = hearth_tests::http::get_json(hub_http, "/api/alerts").await?;
        let a = alerts
            .as_array()
            .and_then(|v| v.iter().find(|a| a["id"] == alert_id.as_str()))
            .ok_or_else(|| format!("alert not in {alerts}"))?;
        if a["state"] == "acknowledged" {
            Ok(())
        } else {
            Err(a.to_string())
        }
    })
    .await;
    // …and its acknowledged revision comes back to the community hub, live, and shows in the queue.
    page.wait_until(
        "(document.querySelector('tr[data-alert]') || {dataset: {}}).dataset.state === 'acknowledged'",
        WAIT,
    )
    .await;
    let row = page
        .eval("document.querySelector('tr[data-alert]').innerText")
        .await
        .unwrap();
    assert!(
        row.as_str().unwrap().contains("Acknowledged by nurse1"),
        "{row}"
    );
    let audit = community
        .store
        .audit_log(Some(&alert_id), 10)
        .await
        .unwrap();
    assert_eq!(audit[0].actor, "nurse1");
    assert_eq!(audit[0].action, "alert.acknowledge");

    page.goto(&format!("{base}/patients/p-0001")).await;
    assert_eq!(
        page.eval("document.querySelectorAll('svg[role=img]').length")
            .await
            .unwrap(),
        5
    );
    let spo2_points = page.eval("document.querySelectorAll('#chart-spo2 ~ svg circle, figure svg[aria-labelledby=chart-spo2] circle').length").await.unwrap();
    assert!(
        spo2_points.as_u64().unwrap() >= 1,
        "the SpO2 value is charted"
    );
    page.screenshot(&shots.join("patient.png")).await;
    assert!(std::fs::metadata(shots.join("queue.png")).unwrap().len() > 1000);
}
