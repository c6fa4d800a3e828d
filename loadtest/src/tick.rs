//! The data of each published event (`publish` scenario) and the clock its send time is read
//! from.
//!
//! The publisher (this process over HTTP, or the Node emitter script) sends the event with the
//! single argument `{"room": r, "seq": s, "sent_us": t, "pad": "xx.."}`: the room's index in
//! the run, the room's own sequence number (from 0), and the send time in microseconds of the
//! wall clock (Unix time). Publisher and receivers run on one machine, so they read one clock;
//! the wall clock is the one a separate process (the emitter script) shares with this one.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use socketio_client::RawEvent;

/// Microseconds of the wall clock (Unix time); 0 before 1970.
pub fn wall_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// What one published event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tick {
    /// The room's index in the run.
    pub room: u32,
    /// The room's sequence number, from 0.
    pub seq: u32,
    /// Send time, [`wall_micros`].
    pub sent_us: u64,
}

/// The data as sent: the tick and a padding string of `pad_bytes` `x`.
#[derive(Serialize)]
struct Padded<'a> {
    #[serde(flatten)]
    tick: Tick,
    pad: &'a str,
}

/// What a receiver makes of one server event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Another event (`welcome`, ...).
    Other,
    /// The published event, with data that is not a tick.
    Unreadable,
    /// The published event with this tick.
    Tick(Tick),
}

impl Tick {
    /// The event's data, padded with `pad_bytes` bytes.
    pub fn data(&self, pad_bytes: usize) -> serde_json::Value {
        let pad = "x".repeat(pad_bytes);
        serde_json::to_value(Padded {
            tick: *self,
            pad: &pad,
        })
        .unwrap_or_default()
    }

    /// Reads the tick of event `name` (`["name", {room, seq, sent_us, ...}]`).
    pub fn heard(event: RawEvent<'_>, name: &str) -> Heard {
        match event.decode_if::<Self>(name) {
            Ok(None) => Heard::Other,
            Ok(Some(tick)) => Heard::Tick(tick),
            Err(_) => Heard::Unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ticks_round_trip_through_the_event_with_their_padding() {
        let tick = Tick {
            room: 3,
            seq: 41,
            sent_us: 1_764_000_000_123_456,
        };
        let data = tick.data(8);
        assert_eq!(data["pad"], "xxxxxxxx");
        let event = format!(r#"["tick",{data}]"#);
        assert_eq!(
            Tick::heard(RawEvent::new(None, &event), "tick"),
            Heard::Tick(tick)
        );
        assert_eq!(
            Tick::heard(RawEvent::new(None, &event), "other"),
            Heard::Other
        );
        for bad in [
            r#"["tick",{"room":1}]"#,
            r#"["tick","text"]"#,
            r#"["tick"]"#,
        ] {
            assert_eq!(
                Tick::heard(RawEvent::new(None, bad), "tick"),
                Heard::Unreadable,
                "{bad}"
            );
        }
    }

    #[test]
    fn the_wall_clock_reads_unix_microseconds() {
        let now = wall_micros();
        // After 2020-01-01 and before 2100-01-01.
        assert!(
            now > 1_577_836_800_000_000 && now < 4_102_444_800_000_000,
            "{now}"
        );
    }
}
