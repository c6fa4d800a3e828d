//! Every adapter operation, across three instances sharing one real Redis.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support::RedisServer;

/// A test per case of the suite, each on its own Redis.
macro_rules! on_standalone_redis {
    ($($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let redis = RedisServer::start().await;
            crate::suite::$case(&redis.url()).await;
        }
    )*};
}

on_standalone_redis!(
    room_broadcast_reaches_members_on_every_instance,
    namespace_broadcast_and_several_rooms_reach_each_socket_once,
    except_excludes_sockets_on_other_instances,
    local_flag_stays_on_this_instance_and_volatile_crosses,
    acks_from_sockets_on_all_instances_are_collected,
    fetch_sockets_and_rooms_see_every_instance,
    remote_disconnect_closes_a_socket_on_another_instance,
    remote_join_and_leave_take_effect_on_another_instance,
    server_count_counts_every_instance,
);
