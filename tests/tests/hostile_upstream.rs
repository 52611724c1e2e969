//! Hostile input from the community hub's side: an acknowledgement or a nurse action that is too large, nested too
//! deep or not UTF-8 is refused with its reason and counted (`hearth_upstream_messages_rejected_total{topic,reason}`),
//! changes nothing, and does not cost the hub its upstream connection: the next alert is still delivered.
//! (The sensors side — oversized, deep, invalid UTF-8 readings quarantined with their reason — is pinned by
//! `hub_mqtt::every_bad_input_is_quarantined_with_its_reason` and `an_oversized_message_is_counted…`.)

use hearth_tests::hub::Rule;
use hearth_tests::rig::{EVENT_TIMEOUT as T, Rig, SensorsVia};
use hearth_tests::time_fmt::now_plus_s;
use serde_json::json;

fn hostile() -> Vec<(&'static str, Vec<u8>)> {
    let deep = format!(r#"{{"acks":{}1{}}}"#, "[".repeat(64), "]".repeat(64));
    let mut big = br#"{"acks":[],"pad":""#.to_vec();
    big.extend(std::iter::repeat_n(b'x', 20 * 1024));
    big.extend_from_slice(br#""}"#);
    vec![
        ("too_deep", deep.into_bytes()),
        ("invalid_utf8", vec![b'{', 0xff, 0xfe, b'}']),
        ("too_large", big),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_acks_and_actions_are_refused_counted_and_harmless() {
    let rig = Rig::start(SensorsVia::Embedded, |c| {
        c.patient("p-1", &["dev-1"])
            .rule(Rule::below("spo2", 92.0, "high"))
    })
    .await;
    rig.wait_metric("hearth_upstream_connected", &[], |v| v == 1.0)
        .await;
    let mut opts = rumqttc::MqttOptions::new("hostile", "127.0.0.1", rig.upstream.port());
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (attacker, mut events) = rumqttc::AsyncClient::new(opts, 16);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    for topic in ["care/acks/home-e2e", "care/actions/home-e2e"] {
        for (_, payload) in hostile() {
            attacker
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .unwrap();
        }
    }
    for topic in ["acks", "actions"] {
        for (reason, _) in hostile() {
            rig.wait_metric(
                "hearth_upstream_messages_rejected_total",
                &[("topic", topic), ("reason", reason)],
                |v| v == 1.0,
            )
            .await;
        }
    }
    // The connection survived: an alert raised now is delivered and acknowledged end to end.
    rig.reading("dev-1", 1, now_plus_s(-5), json!({"spo2": 88}))
        .await;
    let alert = rig.receiver.wait_for_alert(T, |a| a.patient == "p-1").await;
    assert_eq!(alert.state, "open");
    rig.wait_outbox_depth(0, T).await;
    assert_eq!(
        rig.metric("hearth_upstream_connected", &[]).await,
        Some(1.0)
    );
}
