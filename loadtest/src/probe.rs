//! The probe carried in each chat message's text, and the clock its send time is read from.
//!
//! The text is `"<sender>:<seq>:<micros>:"` padded with `x` to the body size: the sender's
//! user number, its per-sender sequence number (from 0) and the send time in microseconds
//! since the run's clock started. Senders and receivers live in one process, so one monotonic
//! clock serves both ends. [`Probe::in_message`] reads it from a server's `message` event.

use std::borrow::Cow;
use std::time::Instant;

use serde::Deserialize;

use socketio_client::RawEvent;

/// A process-wide monotonic clock in microseconds since the run started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock reading 0 now.
    pub fn start() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Microseconds since the clock started.
    pub fn micros(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What a receiver learns from one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The sending user's number.
    pub sender: u32,
    /// The sender's sequence number, from 0.
    pub seq: u32,
    /// Send time, [`Clock::micros`].
    pub sent_us: u64,
}

impl Probe {
    /// The message text: the probe, padded with `x` to at least `body_bytes` bytes.
    pub fn encode(&self, body_bytes: usize) -> String {
        let mut text = format!("{}:{}:{}:", self.sender, self.seq, self.sent_us);
        let padding = body_bytes.saturating_sub(text.len());
        text.extend(std::iter::repeat_n('x', padding));
        text
    }

    /// Reads a probe back from a text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let mut fields = text.splitn(4, ':');
        let sender = fields.next()?.parse().ok()?;
        let seq = fields.next()?.parse().ok()?;
        let sent_us = fields.next()?.parse().ok()?;
        fields.next()?;
        Some(Self {
            sender,
            seq,
            sent_us,
        })
    }
}

/// The `message` payload, as far as receivers read it.
#[derive(Deserialize)]
struct Incoming<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
}

/// What a server event holds for a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Not a `message` event (`welcome`, `typing`, ...).
    Other,
    /// A `message` whose payload or text is not a probe.
    Unreadable,
    /// A `message` carrying this probe.
    Probe(Probe),
}

impl Probe {
    /// Reads the probe of a `message {text, ...}` event, without decoding anything else.
    pub fn in_message(event: RawEvent<'_>) -> Received {
        match event.decode_if::<Incoming<'_>>("message") {
            Ok(None) => Received::Other,
            Ok(Some(message)) => {
                Self::decode(&message.text).map_or(Received::Unreadable, Received::Probe)
            }
            Err(_) => Received::Unreadable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_are_read_from_message_events_only() {
        let probe = Probe {
            sender: 0,
            seq: 41,
            sent_us: 9,
        };
        let message = format!(
            r#"["message",{{"room":"r","id":"x-1","from":"b","text":"{}","ts":1}}]"#,
            probe.encode(16)
        );
        assert_eq!(
            Probe::in_message(RawEvent::new(None, &message)),
            Received::Probe(probe)
        );
        let welcome = r#"["welcome",{"instance":"i","sid":"s"}]"#;
        assert_eq!(
            Probe::in_message(RawEvent::new(None, welcome)),
            Received::Other
        );
        for bad in [
            r#"["message",{"text":"hello"}]"#,
            r#"["message",{"room":"r"}]"#,
            "[]",
        ] {
            assert_eq!(
                Probe::in_message(RawEvent::new(None, bad)),
                Received::Unreadable,
                "{bad}"
            );
        }
    }

    #[test]
    fn probes_round_trip_with_padding() {
        let probe = Probe {
            sender: 12,
            seq: 7,
            sent_us: 123_456,
        };
        let text = probe.encode(64);
        assert_eq!(text.len(), 64);
        assert!(text.starts_with("12:7:123456:xx"));
        assert_eq!(Probe::decode(&text), Some(probe));
        // A body smaller than the header is not cut.
        assert_eq!(Probe::decode(&probe.encode(1)), Some(probe));
    }

    #[test]
    fn garbage_is_no_probe() {
        for text in [
            "",
            "1:2",
            "1:2:3",
            "a:2:3:",
            "1:-2:3:",
            "1:2:99999999999999999999999:",
            "é:1:1:",
        ] {
            assert_eq!(Probe::decode(text), None, "{text}");
        }
    }
}
