//! The authoritative DNS server.
//!
//! Split as hickory's proto and server are: [`Server::handle`] turns request bytes into
//! response bytes with no I/O (the fuzz target and the tests drive it directly), routing
//! each question through the [`catalog`] to the [`handler`] of its zone, checking TSIG
//! with [`tsig`] and passing signed updates to [`crate::update`]. [`net`] is the thin
//! tokio shell for UDP and TCP, with [`rrl`] limiting UDP responses and [`notify`]
//! telling secondaries about new serials.
//!
//! Answers come from an in-memory snapshot of the zone. [`Server::reload`] rebuilds it
//! from the store (the shell calls it whenever the store's watch reports a branch move),
//! so a commit changes the answers without a restart.

pub mod catalog;
pub mod handler;
pub mod net;
pub mod notify;
pub mod rrl;
pub mod tsig;

use std::sync::{Arc, RwLock};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, LowerName, RecordType, TSigResponseContext};

use crate::enroll::Site;
use crate::error::Result;
use crate::provider::Provider;
use crate::zone::Zone;
use catalog::Catalog;

/// Everything a snapshot is built from lives under this folder of the store: the zone,
/// the TSIG keys' names, the revocations. While its tree stays the same, a branch move
/// (a delivered message, a saved contact) needs no reload.
const IDENTITY_DIR: &str = "/identity";
use tsig::{Checked, KeyRing};

/// The largest UDP response this server sends (the DNS flag day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// The UDP response size without EDNS (RFC 1035).
pub const CLASSIC_UDP_PAYLOAD: u16 = 512;

/// How a request arrived, which bounds the response's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// A UDP datagram: responses fit the client's EDNS size or 512 bytes.
    Udp,
    /// A TCP stream: responses up to 65,535 bytes.
    Tcp,
}

/// What the server answers from: zones and TSIG keys.
#[derive(Debug, Default)]
struct State {
    catalog: Catalog,
    keys: KeyRing,
    /// The `/identity/zone` tree this snapshot was built from.
    zone_tree: Option<kith_store::Hash>,
    /// The `/identity` tree (zone, TSIG keys, revocations) it was built from.
    identity_tree: Option<kith_store::Hash>,
}

/// The DNS server's core: a snapshot of the zone, and the store to write updates to.
pub struct Server {
    state: RwLock<Arc<State>>,
    site: Option<Site>,
    provider: Provider,
}

/// A response before encoding: plain, or to be TSIG-signed.
struct Outcome {
    message: Message,
    sign: Option<TSigResponseContext>,
}

impl Server {
    /// A server over the identity in `site`, loaded now; it accepts signed updates.
    pub fn open(site: Site) -> Result<Server> {
        let provider = site.provider.clone();
        let server = Server {
            state: RwLock::default(),
            site: Some(site),
            provider,
        };
        server.reload()?;
        Ok(server)
    }

    /// A read-only server of one zone (no store, no updates).
    pub fn with_zone(zone: Zone, keys: KeyRing, provider: Provider) -> Server {
        let state = State {
            zone_tree: None,
            identity_tree: None,
            catalog: Catalog::new(vec![Arc::new(zone)]),
            keys,
        };
        Server {
            state: RwLock::new(Arc::new(state)),
            site: None,
            provider,
        }
    }

    /// Rebuilds the snapshot from the store; returns the served serial when the zone
    /// changed. Serials only grow: a change within the second of the last gets `old + 1`.
    pub fn reload(&self) -> Result<Option<u32>> {
        let Some(site) = &self.site else {
            return Ok(None);
        };
        let root = site.store.head_tree(&site.branch)?;
        let identity_tree = site.store.find(&root, IDENTITY_DIR)?.map(|(_, h)| h);
        let old = self.state();
        if identity_tree.is_some() && identity_tree == old.identity_tree {
            return Ok(None);
        }
        let zone_tree = site
            .store
            .find(&root, crate::zone::ZONE_DIR)?
            .map(|(_, h)| h);
        let zone = Zone::load_branch(&site.store, &site.branch)?;
        let keys = KeyRing::new(&site.tsig_keys()?)?;
        let old_served = old.catalog.zones().first().map(|z| z.serial());
        let changed = zone_tree != old.zone_tree || old_served.is_none();
        let zone = zone.map(|z| match old_served {
            Some(served) if !changed => z.with_serial(served),
            Some(served) if z.serial() <= served => z.with_serial(served.wrapping_add(1)),
            _ => z,
        });
        let serial = zone.as_ref().map(|z| z.serial());
        let state = State {
            catalog: Catalog::new(zone.into_iter().map(Arc::new).collect()),
            keys,
            zone_tree,
            identity_tree,
        };
        *self.state.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(state);
        Ok(if changed { serial } else { None })
    }

    fn state(&self) -> Arc<State> {
        Arc::clone(&self.state.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The zones served now.
    pub fn zones(&self) -> Vec<Arc<Zone>> {
        self.state().catalog.zones().to_vec()
    }

    /// Answers one request. `None` means no answer is due (a response, or bytes too short
    /// to hold a header).
    pub fn handle(&self, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
        let Ok(request) = Message::from_vec(bytes) else {
            return form_error(bytes);
        };
        if request.metadata.message_type != MessageType::Query {
            return None;
        }
        let state = self.state();
        let outcome = match tsig::check(&state.keys, &request, bytes, self.provider.unix_secs()) {
            Checked::Failed { reason, response } => {
                tracing::info!(id = request.metadata.id, "TSIG check failed: {reason}");
                let message = reply(&request, ResponseCode::NotAuth);
                Outcome {
                    message,
                    sign: Some(response),
                }
            }
            Checked::Unsigned => self.dispatch(&state, &request, None, transport),
            Checked::Valid { device, response } => {
                let mut outcome = self.dispatch(&state, &request, Some(&device), transport);
                outcome.sign = Some(response);
                outcome
            }
        };
        encode(outcome, &request, transport)
    }

    fn dispatch(
        &self,
        state: &State,
        request: &Message,
        signer: Option<&str>,
        transport: Transport,
    ) -> Outcome {
        let message = match request.metadata.op_code {
            OpCode::Query => self.query(state, request, signer, transport),
            OpCode::Update => self.update(state, request, signer),
            _ => reply(request, ResponseCode::NotImp),
        };
        Outcome {
            message,
            sign: None,
        }
    }

    fn query(
        &self,
        state: &State,
        request: &Message,
        signer: Option<&str>,
        transport: Transport,
    ) -> Message {
        let [question] = request.queries.as_slice() else {
            return reply(request, ResponseCode::FormErr);
        };
        if !matches!(question.query_class(), DNSClass::IN | DNSClass::ANY) {
            return reply(request, ResponseCode::Refused);
        }
        let Some(zone) = state.catalog.find(&LowerName::new(question.name())) else {
            return reply(request, ResponseCode::Refused);
        };
        let mut resp = reply(request, ResponseCode::NoError);
        match question.query_type() {
            RecordType::AXFR | RecordType::IXFR => {
                if signer.is_none() || transport != Transport::Tcp {
                    return reply(request, ResponseCode::Refused);
                }
                if LowerName::new(question.name()) != *zone.lower_origin() {
                    return reply(request, ResponseCode::NotAuth);
                }
                resp.metadata.authoritative = true;
                let records = zone.records();
                let soa = records.first().cloned();
                resp.add_answers(records);
                resp.add_answers(soa);
            }
            qtype => handler::answer(zone, question.name(), qtype, &mut resp),
        }
        resp
    }

    fn update(&self, state: &State, request: &Message, signer: Option<&str>) -> Message {
        let (Some(site), Some(device)) = (&self.site, signer) else {
            return reply(request, ResponseCode::Refused);
        };
        let zone = request
            .queries
            .first()
            .and_then(|q| state.catalog.find(&LowerName::new(q.name())));
        let Some(zone) = zone else {
            return reply(request, ResponseCode::NotAuth);
        };
        let code = match crate::update::apply(site, zone, request, device) {
            Ok(code) => code,
            Err(e) => {
                tracing::warn!("update from {device} failed: {e}");
                ResponseCode::ServFail
            }
        };
        if code == ResponseCode::NoError
            && let Err(e) = self.reload()
        {
            tracing::warn!("reloading the zone after an update: {e}");
        }
        reply(request, code)
    }
}

/// A response to `request` with its id, opcode, RD flag and question.
fn reply(request: &Message, code: ResponseCode) -> Message {
    let mut resp = Message::response(request.metadata.id, request.metadata.op_code);
    resp.metadata.recursion_desired = request.metadata.recursion_desired;
    resp.metadata.response_code = code;
    resp.add_queries(request.queries.iter().cloned());
    resp
}

/// FORMERR for bytes that hold a query header but do not parse; silence otherwise.
fn form_error(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 12 || bytes[2] & 0x80 != 0 {
        return None;
    }
    let id = u16::from_be_bytes([bytes[0], bytes[1]]);
    let op = OpCode::from_u8((bytes[2] >> 3) & 0x0f);
    Message::error_msg(id, op, ResponseCode::FormErr)
        .to_vec()
        .ok()
}

/// Encodes a response within the size the transport and the client's EDNS allow,
/// truncating (TC=1) when it does not fit a UDP datagram.
fn encode(mut outcome: Outcome, request: &Message, transport: Transport) -> Option<Vec<u8>> {
    let limit = match (transport, &request.edns) {
        (Transport::Tcp, _) => usize::from(u16::MAX),
        (Transport::Udp, Some(edns)) => usize::from(
            edns.max_payload()
                .clamp(CLASSIC_UDP_PAYLOAD, MAX_UDP_PAYLOAD),
        ),
        (Transport::Udp, None) => usize::from(CLASSIC_UDP_PAYLOAD),
    };
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(MAX_UDP_PAYLOAD);
        outcome.message.set_edns(edns);
    }
    let bytes = match outcome.sign {
        Some(context) => tsig::sign(outcome.message.clone(), context),
        None => outcome.message.to_vec().map_err(Into::into),
    };
    match bytes {
        Ok(bytes) if bytes.len() <= limit => Some(bytes),
        Ok(_) => outcome.message.truncate().to_vec().ok(),
        Err(e) => {
            tracing::warn!("encoding a response: {e}");
            let mut fail = reply(request, ResponseCode::ServFail);
            fail.metadata.authoritative = false;
            fail.to_vec().ok()
        }
    }
}

/// The truncated form of an encoded response (TC=1, question only), for RRL slips.
pub fn truncated(response: &[u8]) -> Option<Vec<u8>> {
    Message::from_vec(response).ok()?.truncate().to_vec().ok()
}
