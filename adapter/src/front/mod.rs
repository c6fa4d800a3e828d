//! The socketioxide front end of the cluster bus: the `CoreAdapter` that socketioxide
//! applications install, and the state they share.

mod adapter;
mod emitted;
mod gate;
mod ids;
mod outbox;
mod state;

pub use adapter::{InitRes, RedisAckStream, RedisAdapter};
pub use gate::MAX_HELD;
pub use state::{Hold, MembershipChange, RedisAdapterState};

use socketioxide_core::adapter::errors::{AdapterError, BroadcastError};

use crate::error::Error;

impl From<Error> for AdapterError {
    fn from(err: Error) -> Self {
        AdapterError::from(Box::new(err) as Box<dyn std::error::Error + Send>)
    }
}

impl From<Error> for BroadcastError {
    fn from(err: Error) -> Self {
        BroadcastError::Adapter(err.into())
    }
}

#[cfg(test)]
mod tests {
    use socketioxide_core::adapter::{
        RemoteSocketData,
        remote_packet::{RequestIn, Response},
    };

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Whatever another instance (or anyone with Redis access) sends as a request or a
        /// response body: decoded or rejected, never a panic.
        #[test]
        fn arbitrary_bodies_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = rmp_serde::from_slice::<RequestIn>(&body);
            let _ = rmp_serde::from_slice::<Response<RemoteSocketData>>(&body);
        }
    }
}
