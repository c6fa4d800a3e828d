//! Property tests: arbitrary JSON to every chat event (and to an event the chat does not
//! handle) never panics the gateway nor costs the socket its connection; each gets an ack,
//! malformed input an error ack counted in `socketio_events_rejected_total`, and valid events
//! still work afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use proptest::{
    prelude::*,
    test_runner::{Config as ProptestConfig, TestCaseError, TestRunner},
};
use serde_json::{Map, Number, Value, json};
use support::{TIMEOUT, TestGateway, ack, connect, metric, metrics, standalone};

/// Cases per event: enough variety, a few seconds in all.
const CASES: u32 = 64;

/// Events tried, `nope` being one the chat does not handle.
const EVENTS: [&str; 6] = ["join", "leave", "message", "typing", "dm", "nope"];

/// Strings a validator could trip on: anything unicode, control and zero-width characters,
/// room-like names with colons, and long texts.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\u{7f}\\u{200b}\\u{feff}a-z:]{0,40}",
        "[A-Za-z0-9_.:-]{1,70}",
        "\\PC{1900,2100}",
    ]
}

/// Object keys: mostly the fields the chat reads, so that validation is reached.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("room".to_owned()),
        3 => Just("text".to_owned()),
        2 => Just("to".to_owned()),
        1 => string(),
    ]
}

/// Arbitrary JSON trees: huge and fractional numbers, strings as above, nested arrays and
/// objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        Just(json!(1e308)),
        string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[test]
fn arbitrary_payloads_get_acks_and_leave_the_socket_up() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gateway = runtime.block_on(TestGateway::start(standalone()));
    let client = runtime.block_on(connect(gateway.url()));

    for event in EVENTS {
        let config = ProptestConfig {
            cases: CASES,
            failure_persistence: None,
            ..ProptestConfig::default()
        };
        let mut runner = TestRunner::new(config);
        let outcome = runner.run(&json_value(), |payload| {
            let reply = runtime
                .block_on(client.emit_with_ack(event, payload.clone(), TIMEOUT))
                .map_err(|err| TestCaseError::fail(format!("{event} {payload}: no ack ({err})")))?;
            // Every answer is an object: a refusal with a reason, or a success.
            let refused = reply.get("error").is_some();
            prop_assert!(
                refused && reply["error"].is_string()
                    || reply.get("ok") == Some(&json!(true))
                    || reply.get("id").is_some(),
                "{event} {payload}: unexpected ack {reply}"
            );
            Ok(())
        });
        if let Err(err) = outcome {
            panic!("{event}: {err}");
        }
        // Still connected, and a valid event is still carried out.
        let joined = runtime.block_on(ack(&client, "join", json!({"room": "lobby"})));
        assert_eq!(
            joined,
            json!({"ok": true}),
            "after arbitrary {event} payloads"
        );
    }

    let sent = runtime.block_on(ack(
        &client,
        "message",
        json!({"room": "lobby", "text": "still here"}),
    ));
    assert!(sent["id"].is_string(), "{sent}");

    // Every refusal was counted, per event.
    let body = runtime.block_on(metrics(gateway.url()));
    for event in EVENTS {
        let label = if event == "nope" { "unknown" } else { event };
        let received = metric(
            &body,
            &format!("socketio_events_in_total{{event=\"{label}\"}}"),
        );
        assert!(
            received.is_some_and(|n| n >= f64::from(CASES)),
            "{label}: {received:?} events counted in\n{body}"
        );
        let rejected: f64 = body
            .lines()
            .filter(|line| {
                line.starts_with(&format!(
                    "socketio_events_rejected_total{{event=\"{label}\","
                ))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(rejected > 0.0, "{label}: no rejection counted\n{body}");
    }
    assert_eq!(
        metric(
            &body,
            "socketio_events_rejected_total{event=\"unknown\",reason=\"unknown_event\"}"
        ),
        Some(f64::from(CASES))
    );
    drop(client);
    runtime.block_on(gateway.stop()).unwrap();
}
