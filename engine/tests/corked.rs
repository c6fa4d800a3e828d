//! `Session::corked`: what a socket is sent during one poll of the corked future leaves when
//! that poll ends, in order, and nothing waits across an `.await`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::{sync::Arc, time::Duration};

use engine::{
    server::{Config, Engine},
    sockets::{Nsp, SocketIo},
};

mod common;
use common::{Quiet, next_text};

async fn server() -> (String, Arc<Nsp>) {
    let io = Arc::new(SocketIo::new().namespace("/", Quiet));
    let nsp = io.of("/").unwrap().clone();
    (common::serve(Engine::new(Config::default(), io)).await, nsp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_poll_sends_leaves_at_its_end_in_order_and_nothing_waits_across_an_await() {
    let (url, nsp) = server().await;
    let (mut ws, socket) = common::socket_client(&url, &nsp).await;
    socket.join("r").await.unwrap();
    let (first_poll_done, first_poll_seen) = tokio::sync::oneshot::channel::<()>();
    let session = socket.session().clone();
    let task = tokio::spawn(async move {
        session
            .corked(async {
                socket.emit("a", &1).unwrap();
                // A broadcast reaching this socket from the same poll waits with the emits.
                socket.nsp().to(["r"]).local().emit_now("b", &2).unwrap();
                socket.emit("c", &3).unwrap();
                // The poll ends here: the three must be out while this sleeps.
                drop(first_poll_done);
                tokio::time::sleep(Duration::from_secs(2)).await;
                socket.emit("d", &4).unwrap();
            })
            .await;
    });
    let _ = first_poll_seen.await;
    let received = tokio::time::timeout(Duration::from_secs(1), async {
        [
            next_text(&mut ws).await,
            next_text(&mut ws).await,
            next_text(&mut ws).await,
        ]
    })
    .await
    .expect("the first poll's packets before the corked future ends");
    assert_eq!(received, [r#"42["a",1]"#, r#"42["b",2]"#, r#"42["c",3]"#]);
    assert_eq!(next_text(&mut ws).await, r#"42["d",4]"#);
    task.await.unwrap();
}
