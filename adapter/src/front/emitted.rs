//! Emitter operations in socketioxide's terms: which local sockets they select, and the
//! packet an emit sends them.

use socketioxide_core::{
    Str,
    adapter::{BroadcastFlags, BroadcastOptions},
    packet::Packet,
    parser::{Parse, ParserError},
};

use crate::cluster::{EventArgs, Selection};

/// The options selecting the local sockets of `selection`: every socket of the namespace
/// when it names no room, as with the emitter in Node.
pub(super) fn options(selection: &Selection, volatile: bool) -> BroadcastOptions {
    let mut opts = BroadcastOptions::default();
    opts.add_flag(BroadcastFlags::Broadcast);
    if volatile {
        opts.add_flag(BroadcastFlags::Volatile);
    }
    opts.rooms = selection.rooms.iter().cloned().collect();
    opts.except = selection.except.iter().cloned().collect();
    opts
}

/// The event packet of namespace `ns` for `event(...args)`, encoded by the namespace's own
/// `parser` (binary arguments become attachments with the default parser).
pub(super) fn event_packet(
    parser: impl Parse,
    ns: &Str,
    event: &str,
    args: &EventArgs,
) -> Result<Packet, ParserError> {
    let value = parser.encode_value(args, Some(event))?;
    Ok(Packet::event(ns.clone(), value))
}
