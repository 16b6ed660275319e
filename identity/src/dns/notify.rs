//! NOTIFY (RFC 1996): telling secondaries the zone changed.
//!
//! Sent once over UDP to each configured secondary when the served serial changes; the
//! secondary then asks for the SOA and transfers the zone with its TSIG key.

use std::net::{SocketAddr, UdpSocket};

use hickory_proto::op::{Message, MessageType, OpCode, Query};
use hickory_proto::rr::RecordType;

use crate::zone::Zone;

/// The NOTIFY message for `zone` (RFC 1996 §3.7: AA set, the SOA in the answer).
pub fn message(zone: &Zone, id: u16) -> Message {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Notify);
    msg.metadata.authoritative = true;
    msg.add_query(Query::query(zone.origin().clone(), RecordType::SOA));
    if let Ok(soa) = zone.soa_record() {
        msg.add_answer(soa.clone());
    }
    msg
}

/// Sends a NOTIFY for `zone` to each secondary (best effort, logged on failure).
pub fn send(zone: &Zone, secondaries: &[SocketAddr]) {
    for target in secondaries {
        let local: SocketAddr = if target.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let id = (zone.serial() & 0xffff) as u16;
        let sent = message(zone, id)
            .to_vec()
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|bytes| UdpSocket::bind(local)?.send_to(&bytes, target));
        match sent {
            Ok(_) => tracing::info!(
                "dns: NOTIFY {} serial {} to {target}",
                zone.origin(),
                zone.serial()
            ),
            Err(e) => tracing::warn!("dns: NOTIFY to {target}: {e}"),
        }
    }
}
