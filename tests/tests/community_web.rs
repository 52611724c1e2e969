//! The nurse dashboard over HTTP: accounts, sessions and CSRF (security tests), the caseload queue, nurses' actions
//! flowing to the home over the broker and into the audit log, the patient page, and the FHIR R4 export.

use std::time::Duration;

use hearth_protocol::json::ActionKind;
use hearth_tests::community::{Community, Db, SimHomes, alert_json};
use hearth_tests::mosquitto::Mosquitto;
use hearth_tests::wait::poll_until;
use hearth_tests::web::{WebClient, csrf_in};

const WAIT: Duration = Duration::from_secs(15);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

struct Rig {
    broker: Mosquitto,
    hub: Community,
    homes: SimHomes,
}

/// A community hub with a nurse and a technician, and alerts a-high (NEWS2 7, SBARD), a-med, a-low from home-1.
async fn rig() -> Rig {
    let broker = Mosquitto::start();
    let hub = Community::start(broker.port(), &Db::Sqlite, None).await;
    hub.add_user("nurse1", "nurse", "nurse-password").await;
    hub.add_user("tech1", "technician", "tech-password").await;
    let homes = SimHomes::connect(broker.port()).await;
    let t = now_ms();
    let news2 = serde_json::json!({"news2": {"total": 7, "band": "high", "complete": true, "subscores": [
        {"parameter": "resp_rate", "value": 24, "observed_at": hearth_protocol::json::format_rfc3339_millis(t - 3_600_000), "score": 2},
        {"parameter": "pulse", "value": 118, "observed_at": hearth_protocol::json::format_rfc3339_millis(t - 3_600_000), "score": 2}]},
        "sbard": {"situation": "SpO2 89 % and falling", "recommendation": "Visit within 1 hour"}});
    homes
        .publish(
            "care/alerts/p-1",
            alert_json(
                "a-high",
                1,
                "home-1",
                "p-1",
                "high",
                "open",
                t - 60_000,
                Some(news2),
            ),
        )
        .await;
    homes
        .publish(
            "care/alerts/p-2",
            alert_json(
                "a-low",
                1,
                "home-1",
                "p-2",
                "low",
                "open",
                t - 7_200_000,
                None,
            ),
        )
        .await;
    homes
        .publish(
            "care/alerts/p-3",
            alert_json(
                "a-med",
                1,
                "home-1",
                "p-3",
                "medium",
                "open",
                t - 600_000,
                Some(serde_json::json!({"news2": {"total": 5, "band": "medium"}})),
            ),
        )
        .await;
    homes
        .wait_for(WAIT, "3 acks", |i| i.acked().len() >= 3)
        .await;
    Rig { broker, hub, homes }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logged_out_requests_are_refused() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    for path in [
        "/",
        "/queue/rows",
        "/homes",
        "/patients/p-1",
        "/alerts/a-high",
        "/events",
    ] {
        let resp = web.get(path).await;
        assert_eq!(
            (resp.status, resp.header("location")),
            (303, Some("/login")),
            "GET {path}"
        );
    }
    let resp = web.get("/fhir/Observation?patient=p-1").await;
    assert_eq!(resp.status, 401);
    let resp = web
        .post(
            "/alerts/a-high/actions",
            &[("csrf", "x"), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(resp.status, 401);
    // A made-up session cookie is no better.
    web.cookies.insert("hearth_session".into(), "00".repeat(32));
    assert_eq!(web.get("/").await.status, 303);
    assert!(r.homes.inbox().actions.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_httponly_secure_cookie_and_refuses_bad_passwords() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    let bad = web.login("nurse1", "wrong-password").await;
    assert_eq!(bad.status, 401);
    assert!(!web.cookies.contains_key("hearth_session"));
    let unknown = web.login("nobody", "nurse-password").await;
    assert_eq!(unknown.status, 401);
    // Without the login form's CSRF cookie the POST is refused.
    let mut bare = WebClient::new(r.hub.http);
    let resp = bare
        .post(
            "/login",
            &[
                ("username", "nurse1"),
                ("password", "nurse-password"),
                ("csrf", "x"),
            ],
        )
        .await;
    assert_eq!(resp.status, 403);

    let ok = web.login("nurse1", "nurse-password").await;
    assert_eq!((ok.status, ok.header("location")), (303, Some("/")));
    let cookie = ok
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("hearth_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
        assert!(cookie.contains(attr), "{attr} missing in {cookie}");
    }
    assert_eq!(web.get("/").await.status, 200);
    let audit = r.hub.store.audit_log(None, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("nurse1", "login")) && actions.contains(&("nurse1", "login.failed")),
        "{actions:?}"
    );

    // Logging out ends the session on the server, not only in the browser.
    let old = web.cookies.clone();
    let csrf = web.csrf().await;
    assert_eq!(web.post("/logout", &[("csrf", &csrf)]).await.status, 303);
    web.cookies = old;
    assert_eq!(web.get("/").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn technician_cannot_act_and_forged_csrf_is_refused() {
    let r = rig().await;
    let mut tech = WebClient::new(r.hub.http);
    tech.login("tech1", "tech-password").await;
    let page = tech.get("/").await;
    assert!(
        !page.body.contains("ack-a-high"),
        "no Acknowledge button for a technician"
    );
    let csrf = csrf_in(&page.body).unwrap();
    let resp = tech
        .post(
            "/alerts/a-high/actions",
            &[("csrf", &csrf), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(resp.status, 403, "{}", resp.body);
    assert_eq!(
        tech.get("/homes").await.status,
        200,
        "technicians have the homes page"
    );

    let mut nurse = WebClient::new(r.hub.http);
    nurse.login("nurse1", "nurse-password").await;
    let real = nurse.csrf().await;
    let forged = nurse
        .post(
            "/alerts/a-high/actions",
            &[("csrf", "0123456789abcdef"), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(forged.status, 403);
    let missing = nurse
        .post("/alerts/a-high/actions", &[("action", "acknowledge")])
        .await;
    assert!(missing.status >= 400, "a POST without a token is refused");
    // The technician's token is not the nurse's.
    let other = nurse
        .post(
            "/alerts/a-high/actions",
            &[("csrf", &csrf), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(other.status, 403);
    assert_ne!(real, csrf);

    assert!(
        r.homes.inbox().actions.is_empty(),
        "nothing reached the home"
    );
    let a = r.hub.store.alert("a-high").await.unwrap().unwrap();
    assert_eq!(a.acked_by, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_is_ordered_by_priority_with_news2_and_sbard() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    web.login("nurse1", "nurse-password").await;
    let page = web.get("/").await.body;
    let pos = |id: &str| {
        page.find(&format!("data-alert=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not in queue"))
    };
    assert!(
        pos("a-high") < pos("a-med") && pos("a-med") < pos("a-low"),
        "high, medium, low"
    );
    assert!(
        page.contains("SpO2 89 % and falling") && page.contains("Visit within 1 hour"),
        "SBARD shown"
    );
    assert!(
        page.contains("<strong>7</strong> (high)"),
        "NEWS2 and band shown"
    );
    assert!(
        page.contains("aria-live=\"polite\""),
        "live region for updates"
    );
    let resp = web.get("/").await;
    let csp = resp.header("content-security-policy").expect("CSP");
    assert!(
        csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !resp.body.contains("<script>"),
        "no inline script under the CSP"
    );
    assert_eq!(web.get("/static/queue.js").await.status, 200);
    assert!(
        page.contains("<label for=\"") || !page.contains("<input id="),
        "inputs are labelled"
    );
    // The live-refresh fragment has the same rows.
    let rows = web.get("/queue/rows").await.body;
    assert_eq!(rows.matches("data-alert=").count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nurse_actions_reach_the_home_and_the_audit_log() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    web.login("nurse1", "nurse-password").await;
    let csrf = web.csrf().await;
    let resp = web
        .post(
            "/alerts/a-high/actions",
            &[
                ("csrf", &csrf),
                ("action", "acknowledge"),
                ("back", "queue"),
            ],
        )
        .await;
    assert_eq!(
        (resp.status, resp.header("location")),
        (303, Some("/")),
        "{}",
        resp.body
    );
    let resp = web
        .post(
            "/alerts/a-med/actions",
            &[
                ("csrf", &csrf),
                ("action", "assign"),
                ("assignee", "Sam (frailty lead)"),
            ],
        )
        .await;
    assert_eq!(resp.status, 303, "{}", resp.body);
    let resp = web
        .post(
            "/alerts/a-med/actions",
            &[
                ("csrf", &csrf),
                ("action", "snooze"),
                ("reason", "GP visiting at 3"),
                ("snooze_minutes", "90"),
            ],
        )
        .await;
    assert_eq!(resp.status, 303, "{}", resp.body);
    let bad = web
        .post(
            "/alerts/a-low/actions",
            &[("csrf", &csrf), ("action", "resolve"), ("reason", "  ")],
        )
        .await;
    assert_eq!(bad.status, 400, "an outcome is required");
    let resp = web
        .post(
            "/alerts/a-low/actions",
            &[
                ("csrf", &csrf),
                ("action", "resolve"),
                ("reason", "Phoned, advice given"),
            ],
        )
        .await;
    assert_eq!(resp.status, 303, "{}", resp.body);

    let inbox = r
        .homes
        .wait_for(WAIT, "four actions", |i| i.actions.len() >= 4)
        .await;
    assert!(
        inbox
            .actions
            .iter()
            .all(|(t, _)| t == "care/actions/home-1")
    );
    let kinds: Vec<(ActionKind, &str)> = inbox
        .actions
        .iter()
        .map(|(_, a)| (a.action, a.alert_id.as_str()))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (ActionKind::Acknowledge, "a-high"),
            (ActionKind::Assign, "a-med"),
            (ActionKind::Snooze, "a-med"),
            (ActionKind::Resolve, "a-low"),
        ]
    );
    let snooze = &inbox.actions[2].1;
    assert_eq!(snooze.reason.as_deref(), Some("GP visiting at 3"));
    assert_eq!(snooze.until.unwrap() - snooze.at, 90 * 60_000);
    assert!(inbox.actions.iter().all(|(_, a)| a.by == "nurse1"));
    assert_eq!(
        inbox.actions[1].1.assignee.as_deref(),
        Some("Sam (frailty lead)")
    );

    let audit = r.hub.store.audit_log(Some("a-med"), 10).await.unwrap();
    let trail: Vec<(&str, &str)> = audit
        .iter()
        .map(|a| (a.actor.as_str(), a.action.as_str()))
        .collect();
    assert_eq!(
        trail,
        vec![("nurse1", "alert.snooze"), ("nurse1", "alert.assign")]
    );

    // The queue reflects it: a-low is closed, a-high acknowledged, a-med snoozed (so last).
    let page = web.get("/").await.body;
    assert!(!page.contains("data-alert=\"a-low\""));
    assert!(page.contains("Acknowledged by nurse1"));
    assert!(
        page.find("data-alert=\"a-high\"").unwrap() < page.find("data-alert=\"a-med\"").unwrap()
    );
    let again = web
        .post(
            "/alerts/a-low/actions",
            &[("csrf", &csrf), ("action", "acknowledge")],
        )
        .await;
    assert_eq!(again.status, 409, "a closed incident takes no more actions");
    let alert_page = web.get("/alerts/a-med").await.body;
    assert!(
        alert_page.contains("Assigned to Sam (frailty lead)")
            && alert_page.contains("GP visiting at 3")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patient_page_charts_vitals_and_fhir_export_is_an_r4_bundle() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    web.login("tech1", "tech-password").await;
    let page = web.get("/patients/p-1").await;
    assert_eq!(page.status, 200);
    for label in [
        "Respiration rate",
        "SpO₂",
        "Systolic blood pressure",
        "Pulse",
        "Temperature",
    ] {
        assert!(page.body.contains(label), "{label} chart");
    }
    assert_eq!(page.body.matches("<svg role=\"img\"").count(), 5);
    assert!(page.body.contains("data-score=\"3\""), "NEWS2 bands shaded");
    assert!(
        page.body.contains("Pulse over 7 days: 1 points"),
        "the NEWS2 subscore became a point"
    );
    assert_eq!(web.get("/patients/nobody").await.status, 404);

    let resp = web.get("/fhir/Patient/p-1/$everything").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/fhir+json"));
    let b: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
    hearth_tests::fhir::check_bundle(&b);
    let entries = b["entry"].as_array().unwrap();
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "Patient").count(), 1);
    assert!(kinds.contains(&"Device"));
    let obs: Vec<&serde_json::Value> = entries
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == "Observation")
        .collect();
    // SpO2 (the trigger), resp rate and pulse (NEWS2 subscores), and the NEWS2 total.
    let spo2 = obs
        .iter()
        .find(|o| {
            o["code"]["coding"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["code"] == "59408-5")
        })
        .expect("SpO2 by LOINC");
    assert_eq!(spo2["valueQuantity"]["value"], 89.0);
    assert_eq!(spo2["valueQuantity"]["code"], "%");
    assert_eq!(spo2["device"]["reference"], "Device/oximeter-1");
    assert_eq!(
        spo2["meta"]["profile"][0],
        "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdNumericObservation"
    );
    assert!(
        spo2["code"]["coding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["system"] == "urn:iso:std:iso:11073:10101" && c["code"] == "150456")
    );
    let news2 = obs
        .iter()
        .find(|o| o["code"]["coding"][0]["code"] == "1104051000000101")
        .expect("NEWS2 observation");
    assert_eq!(news2["valueInteger"], 7);
    assert!(
        obs.iter().any(|o| o["code"]["coding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "9279-1")),
        "resp rate"
    );
    let search = web.get("/fhir/Observation?patient=Patient/p-1").await;
    let sb: serde_json::Value = serde_json::from_str(&search.body).unwrap();
    hearth_tests::fhir::check_bundle(&sb);
    assert_eq!(sb["total"].as_u64().unwrap() as usize, obs.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn homes_page_lists_homes_with_backlog() {
    let r = rig().await;
    r.homes
        .publish(
            "care/heartbeat/home-1",
            hearth_tests::community::heartbeat_json("home-1", now_ms(), 4),
        )
        .await;
    poll_until("heartbeat stored", WAIT, || async {
        let h = r.hub.store.homes().await.map_err(|e| e.to_string())?;
        if h.first().and_then(|h| h.outbox_depth) == Some(4) {
            Ok(())
        } else {
            Err(format!("{h:?}"))
        }
    })
    .await;
    let mut web = WebClient::new(r.hub.http);
    web.login("tech1", "tech-password").await;
    let page = web.get("/homes").await.body;
    assert!(page.contains("data-home=\"home-1\""));
    assert!(page.contains("<td>4</td>"), "outbox backlog shown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_is_resent_until_the_home_shows_it_applied() {
    let r = rig().await;
    let mut web = WebClient::new(r.hub.http);
    web.login("nurse1", "nurse-password").await;
    let csrf = web.csrf().await;
    web.post(
        "/alerts/a-high/actions",
        &[("csrf", &csrf), ("action", "acknowledge")],
    )
    .await;
    web.post(
        "/alerts/a-med/actions",
        &[("csrf", &csrf), ("action", "assign"), ("assignee", "Sam")],
    )
    .await;
    let first = r
        .homes
        .wait_for(WAIT, "two actions", |i| i.actions.len() >= 2)
        .await;
    let ack_id = first.actions[0].1.action_id.clone();
    // The home did not apply it (no acknowledged revision came back): a pass a minute later resends it, same id;
    // the assignment is sent once.
    let client = rumqttc_client(&r).await;
    let later = now_ms() + 60_000;
    let n = hearth_community::resend::resend_due(&r.hub.store, &client, "care", later, 30)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let inbox = r
        .homes
        .wait_for(WAIT, "the resend", |i| i.actions.len() >= 3)
        .await;
    assert_eq!(inbox.actions[2].1.action_id, ack_id);
    assert_eq!(inbox.actions[2].0, "care/actions/home-1");
    // Not again within the resend interval.
    assert_eq!(
        hearth_community::resend::resend_due(&r.hub.store, &client, "care", later + 10_000, 30)
            .await
            .unwrap(),
        0
    );
    // The home applies it and says so in its next revision: no more resends.
    r.homes
        .publish(
            "care/alerts/p-1",
            alert_json(
                "a-high",
                2,
                "home-1",
                "p-1",
                "high",
                "acknowledged",
                now_ms(),
                None,
            ),
        )
        .await;
    r.homes
        .wait_for(WAIT, "rev 2 acked", |i| {
            i.acked().contains(&("a-high".to_string(), 2))
        })
        .await;
    assert_eq!(
        hearth_community::resend::resend_due(&r.hub.store, &client, "care", later + 120_000, 30)
            .await
            .unwrap(),
        0
    );
}

/// A client of the rig's broker for the resend pass to publish with (its event loop driven in the background).
async fn rumqttc_client(r: &Rig) -> rumqttc::AsyncClient {
    let opts = rumqttc::MqttOptions::new(
        format!("resend-{:08x}", rand::random::<u32>()),
        "127.0.0.1",
        r.broker.port(),
    );
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 64);
    tokio::spawn(async move { while el.poll().await.is_ok() {} });
    client
}
