//! SIGTERM drains an instance: it leaves the membership at once, disconnects its clients,
//! and exits with status 0 within its shutdown deadline; its clients reconnect to the other
//! instances with the same session and keep chatting, while the others never stop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use crate::support::{
    ChildGateway, TIMEOUT, assert_disconnected, cluster_info, clustered_args, connect_token, join,
    login, with_flag,
};
use serde_json::{Value, json};
use socketio_client::{ClientError, SocketClient};
use test_support::{RedisServer, eventually_async};

/// Long, so that a drop "at once" cannot be the heartbeat timeout at work.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(5);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// A client that sends `message`s to `lobby` every 20 ms until told to stop; returns how
/// many were acked `{id, ts}` and the first other outcome, if any.
fn chatter(
    client: SocketClient,
    tag: &'static str,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(u32, Option<String>)> {
    tokio::spawn(async move {
        let mut acked = 0;
        while !stop.load(Ordering::Relaxed) {
            let text = format!("{tag}-{acked}");
            let reply = client
                .emit_with_ack("message", json!({"room": "lobby", "text": text}), TIMEOUT)
                .await;
            match reply {
                Ok(reply) if reply["id"].is_string() => acked += 1,
                Ok(reply) => return (acked, Some(reply.to_string())),
                Err(err) => return (acked, Some(err.to_string())),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (acked, None)
    })
}

/// Reads `client`'s events until a `message` whose text starts with `prefix` arrives.
async fn receives(client: &mut SocketClient, prefix: &str) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next_event(left).await {
            Ok(event) if event.name == "message" && text_of(&event.data).starts_with(prefix) => {
                return;
            }
            Ok(_) => {}
            Err(err) => panic!("waiting for a message from {prefix}: {err}"),
        }
    }
}

fn text_of(data: &Value) -> &str {
    data["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn sigterm_drains_an_instance_and_its_clients_move_to_the_others() {
    let redis = RedisServer::start().await;
    let args = with_flag(
        clustered_args(&redis.url()),
        "--heartbeat-timeout",
        &format!("{}ms", HEARTBEAT_TIMEOUT.as_millis()),
    );
    let args = with_flag(
        args,
        "--shutdown-timeout",
        &format!("{}ms", SHUTDOWN_TIMEOUT.as_millis()),
    );
    let a = ChildGateway::start(&args).await;
    let b = ChildGateway::start(&args).await;
    let mut drained = ChildGateway::start(&args).await;
    let three = eventually_async(TIMEOUT, || async {
        for url in [a.url(), b.url(), drained.url()] {
            if cluster_info(url).await["servers"] != 3 {
                return false;
            }
        }
        true
    })
    .await;
    assert!(three, "the three instances did not find each other");

    // Listeners on every instance, and one chatty client per instance.
    let mut on_a = connect_token(a.url(), &login(a.url(), "alice").await).await;
    let mut on_b = connect_token(b.url(), &login(b.url(), "bob").await).await;
    let carol = login(drained.url(), "carol").await;
    let mut carol_on_drained = connect_token(drained.url(), &carol).await;
    for client in [&on_a, &on_b, &carol_on_drained] {
        join(client, "lobby").await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (url, user, tag) in [
        (a.url(), "alice", "from-a"),
        (b.url(), "bob", "from-b"),
        (drained.url(), "dave", "from-drained"),
    ] {
        let client = connect_token(url, &login(url, user).await).await;
        join(&client, "lobby").await;
        senders.push(chatter(client, tag, stop.clone()));
    }
    receives(&mut carol_on_drained, "from-a").await;
    receives(&mut on_a, "from-drained").await;
    receives(&mut on_b, "from-a").await;

    drained.terminate();
    let terminated = Instant::now();

    // The others drop it at once: its adapter says goodbye when it closes.
    let dropped = eventually_async(HEARTBEAT_TIMEOUT, || async {
        cluster_info(a.url()).await["servers"] == 2 && cluster_info(b.url()).await["servers"] == 2
    })
    .await;
    let dropped_after = terminated.elapsed();
    assert!(dropped, "the drained instance is still counted");
    assert!(
        dropped_after < Duration::from_secs(1),
        "membership dropped after {dropped_after:?}: that is the heartbeat timeout, not a goodbye"
    );

    // Its clients are disconnected, and it exits cleanly within its deadline.
    assert_disconnected(&mut carol_on_drained, SHUTDOWN_TIMEOUT).await;
    let disconnected_after = terminated.elapsed();
    let status = drained
        .wait_exit(SHUTDOWN_TIMEOUT + Duration::from_secs(1))
        .await
        .expect("the drained instance exits within its shutdown deadline");
    let exited_after = terminated.elapsed();
    assert!(status.success(), "exit status {status}");
    println!(
        "SIGTERM drain: membership dropped on the others after {dropped_after:?} (heartbeat \
         timeout {HEARTBEAT_TIMEOUT:?}), clients disconnected after {disconnected_after:?}, \
         exited with {status} after {exited_after:?} (deadline {SHUTDOWN_TIMEOUT:?})"
    );

    // The drained instance's sender saw its connection end, nothing else.
    let (drained_acked, drained_end) = senders.pop().unwrap().await.unwrap();
    assert!(drained_acked > 0);
    assert!(
        drained_end
            .as_deref()
            .is_some_and(|end| end.contains("disconnect") || end.contains("closed")),
        "the drained instance's sender ended with {drained_end:?}"
    );

    // Its clients reconnect to a survivor with the session they had (no new login) and chat on.
    let mut carol_on_a = connect_token(a.url(), &carol).await;
    join(&carol_on_a, "lobby").await;
    receives(&mut carol_on_a, "from-b").await;
    let moved = carol_on_a
        .emit_with_ack(
            "message",
            json!({"room": "lobby", "text": "moved-carol"}),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert!(moved["id"].is_string(), "{moved}");
    receives(&mut on_b, "moved-carol").await;
    receives(&mut on_a, "moved-carol").await;

    // The survivors chatted throughout, every message acked.
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        let (acked, end) = sender.await.unwrap();
        assert!(acked > 0);
        assert_eq!(end, None, "a survivor's sender stopped early");
    }
    // Nothing was wrong with the survivors' own connections either.
    for client in [&on_a, &on_b] {
        let still = client
            .emit_with_ack("join", json!({"room": "lobby"}), TIMEOUT)
            .await;
        assert!(
            !matches!(still, Err(ClientError::Disconnected(_))),
            "a survivor's client was disconnected"
        );
    }
}
