//! Every adapter operation across three instances, written once and run on a standalone
//! Redis (`cross_instance.rs`) and on a Redis Cluster (`cluster.rs`). Each case takes the
//! Redis URL and uses its own channel prefix, so cases can share one Redis.

use std::collections::HashSet;

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::common::{TIMEOUT, assert_quiet, client, recv, start_cluster};

/// See the test of the same name.
pub async fn room_broadcast_reaches_members_on_every_instance(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "room", 3).await)
        .ok()
        .unwrap();
    let mut on_a = client(&a, &["chat"]).await;
    let mut on_b = client(&b, &["chat"]).await;
    let mut outsider = client(&b, &["other"]).await;

    c.io.to("chat").emit("msg", "from C").await.unwrap();

    for member in [&mut on_a, &mut on_b] {
        let event = recv(member).await;
        assert_eq!((event.name.as_str(), event.data), ("msg", json!("from C")));
    }
    assert_quiet(&mut outsider).await;
}

/// See the test of the same name.
pub async fn namespace_broadcast_and_several_rooms_reach_each_socket_once(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "ns", 3).await)
        .ok()
        .unwrap();
    let mut clients = vec![
        client(&a, &["x", "y"]).await,
        client(&b, &["x"]).await,
        client(&c, &["y"]).await,
    ];

    a.io.emit("all", "everyone").await.unwrap();
    b.io.to(["x", "y"]).emit("rooms", "x or y").await.unwrap();

    // Two origins: their messages may interleave differently on each instance.
    for client in &mut clients {
        let mut names = [recv(client).await.name, recv(client).await.name];
        names.sort();
        assert_eq!(names, ["all", "rooms"]);
        assert_quiet(client).await;
    }
}

/// See the test of the same name.
pub async fn except_excludes_sockets_on_other_instances(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "except", 3).await)
        .ok()
        .unwrap();
    let mut vip_a = client(&a, &["chat", "vip"]).await;
    let mut plain_b = client(&b, &["chat"]).await;
    let mut vip_c = client(&c, &["chat", "vip"]).await;

    a.io.to("chat")
        .except("vip")
        .emit("msg", "no vips")
        .await
        .unwrap();

    assert_eq!(recv(&mut plain_b).await.data, json!("no vips"));
    assert_quiet(&mut vip_a).await;
    assert_quiet(&mut vip_c).await;
}

/// See the test of the same name.
pub async fn local_flag_stays_on_this_instance_and_volatile_crosses(url: &str) {
    let [a, b, _c] = <[_; 3]>::try_from(start_cluster(url, "flags", 3).await)
        .ok()
        .unwrap();
    let mut on_a = client(&a, &["chat"]).await;
    let mut on_b = client(&b, &["chat"]).await;

    a.io.local().to("chat").emit("local", &1).await.unwrap();
    assert_eq!(recv(&mut on_a).await.name, "local");
    assert_quiet(&mut on_b).await;

    a.io.volatile()
        .to("chat")
        .emit("volatile", &2)
        .await
        .unwrap();
    assert_eq!(recv(&mut on_a).await.name, "volatile");
    assert_eq!(recv(&mut on_b).await.name, "volatile");
}

/// See the test of the same name.
pub async fn acks_from_sockets_on_all_instances_are_collected(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "ack", 3).await)
        .ok()
        .unwrap();
    let mut clients = vec![
        client(&a, &["poll"]).await,
        client(&b, &["poll"]).await,
        client(&c, &["poll"]).await,
        client(&c, &["poll"]).await,
    ];
    let expected: HashSet<String> = clients.iter().map(|c| c.sid().to_owned()).collect();

    let asking =
        b.io.to("poll")
            .timeout(TIMEOUT)
            .emit_with_ack::<_, Value>("question", "sid?");
    let answering = async {
        for client in &mut clients {
            let event = recv(client).await;
            let ack_id = event.ack_id.expect("the server asked for an ack");
            client.ack(ack_id, json!(client.sid())).await.unwrap();
        }
    };
    let (stream, ()) = tokio::join!(asking, answering);
    let answers: Vec<_> = stream.unwrap().collect().await;

    let answered: HashSet<String> = answers
        .into_iter()
        .map(|(_sid, ack)| ack.unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(answered, expected);
}

/// See the test of the same name.
pub async fn fetch_sockets_and_rooms_see_every_instance(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "fetch", 3).await)
        .ok()
        .unwrap();
    let clients = [
        client(&a, &["ra"]).await,
        client(&b, &["rb"]).await,
        client(&c, &["rc", "shared"]).await,
        client(&a, &["shared"]).await,
    ];

    let sockets = b.io.fetch_sockets().await.unwrap();
    let ids: HashSet<String> = sockets.iter().map(|s| s.data().id.to_string()).collect();
    let expected: HashSet<String> = clients.iter().map(|c| c.sid().to_owned()).collect();
    assert_eq!(ids, expected);

    let in_shared = c.io.to("shared").fetch_sockets().await.unwrap();
    assert_eq!(in_shared.len(), 2);

    let rooms: HashSet<String> =
        a.io.rooms()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.to_string())
            .collect();
    for room in ["ra", "rb", "rc", "shared"] {
        assert!(rooms.contains(room), "{room} missing from {rooms:?}");
    }
}

/// See the test of the same name.
pub async fn remote_disconnect_closes_a_socket_on_another_instance(url: &str) {
    let [a, _b, c] = <[_; 3]>::try_from(start_cluster(url, "disc", 3).await)
        .ok()
        .unwrap();
    let mut target = client(&c, &["doomed"]).await;
    let mut bystander = client(&c, &["safe"]).await;

    a.io.to("doomed").disconnect().await.unwrap();
    assert!(matches!(
        target.next_event(TIMEOUT).await,
        Err(socketio_client::ClientError::Disconnected(_))
    ));

    // One socket by id, through the handle fetch_sockets returns.
    let remote =
        a.io.fetch_sockets()
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.data().id.to_string() == bystander.sid())
            .expect("bystander is visible from A");
    remote.disconnect().await.unwrap();
    assert!(matches!(
        bystander.next_event(TIMEOUT).await,
        Err(socketio_client::ClientError::Disconnected(_))
    ));
}

/// See the test of the same name.
pub async fn remote_join_and_leave_take_effect_on_another_instance(url: &str) {
    let [a, b, c] = <[_; 3]>::try_from(start_cluster(url, "join", 3).await)
        .ok()
        .unwrap();
    let mut on_b = client(&b, &["lobby"]).await;

    a.io.within("lobby").join("stage").await.unwrap();
    c.io.to("stage").emit("show", "on").await.unwrap();
    assert_eq!(recv(&mut on_b).await.name, "show");

    a.io.within("lobby").leave("stage").await.unwrap();
    c.io.to("stage").emit("show", "again").await.unwrap();
    assert_quiet(&mut on_b).await;
}

/// See the test of the same name.
pub async fn server_count_counts_every_instance(url: &str) {
    let cluster = start_cluster(url, "count", 3).await;
    for instance in &cluster {
        assert_eq!(instance.state.server_count("/"), Some(3));
    }
    assert_eq!(cluster[0].state.server_count("/nope"), None);
}
