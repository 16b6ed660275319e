//! Finding peers: a small stub client that asks the zone's server for a service's SRV
//! records, the targets' addresses and their TLSA records.
//!
//! Plain std sockets, no runtime: UDP first, TCP again when the answer comes back
//! truncated. It asks one server, the user's own, which is authoritative for the zone.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::error::{Error, Result};

/// A client of one DNS server.
#[derive(Clone, Debug)]
pub struct Resolver {
    server: SocketAddr,
    timeout: Duration,
}

/// One place a service runs, found through SRV, A/AAAA and TLSA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The target host.
    pub host: Name,
    /// The port.
    pub port: u16,
    /// SRV priority (lower first).
    pub priority: u16,
    /// The host's addresses.
    pub addresses: Vec<IpAddr>,
    /// TLSA 3 1 1 digests published for `_port._tcp.host`.
    pub tlsa: Vec<Vec<u8>>,
}

impl Resolver {
    /// A client of the server at `server`.
    pub fn new(server: SocketAddr) -> Resolver {
        Resolver {
            server,
            timeout: Duration::from_secs(2),
        }
    }

    /// The answer records of `name`/`rtype` (empty for NODATA and NXDOMAIN).
    pub fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Vec<Record>> {
        let mut query = Message::query();
        query.add_query(Query::query(name.clone(), rtype));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        query.set_edns(edns);
        let bytes = query.to_vec()?;
        let mut response = self.exchange_udp(&bytes).map_err(|e| fail(name, e))?;
        if response.metadata.truncation {
            response = self.exchange_tcp(&bytes).map_err(|e| fail(name, e))?;
        }
        match response.metadata.response_code {
            ResponseCode::NoError | ResponseCode::NXDomain => Ok(response.answers),
            code => Err(fail(name, format!("server answered {code}"))),
        }
    }

    /// The endpoints of service `srv` (e.g. `_kith-sync._tcp.alice.home.arpa.`), best
    /// priority first.
    pub fn service(&self, srv: &Name) -> Result<Vec<Endpoint>> {
        let mut endpoints = Vec::new();
        for record in self.lookup(srv, RecordType::SRV)? {
            let RData::SRV(srv) = record.data else {
                continue;
            };
            let host = srv.target.clone();
            let mut addresses = Vec::new();
            for rtype in [RecordType::A, RecordType::AAAA] {
                addresses.extend(
                    self.lookup(&host, rtype)?
                        .iter()
                        .filter_map(|r| r.data.ip_addr()),
                );
            }
            let tlsa_name = Name::from_ascii(format!("_{}._tcp", srv.port))
                .and_then(|n| n.append_domain(&host))?;
            let tlsa = self
                .lookup(&tlsa_name, RecordType::TLSA)?
                .into_iter()
                .filter_map(|r| match r.data {
                    RData::TLSA(t) => Some(t.cert_data),
                    _ => None,
                })
                .collect();
            endpoints.push(Endpoint {
                host,
                port: srv.port,
                priority: srv.priority,
                addresses,
                tlsa,
            });
        }
        endpoints.sort_by_key(|e| e.priority);
        Ok(endpoints)
    }

    fn exchange_udp(&self, query: &[u8]) -> std::result::Result<Message, String> {
        let local: SocketAddr = if self.server.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let socket = UdpSocket::bind(local).map_err(|e| e.to_string())?;
        socket
            .set_read_timeout(Some(self.timeout))
            .map_err(|e| e.to_string())?;
        socket
            .send_to(query, self.server)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 65_535];
        let id = u16::from_be_bytes([query[0], query[1]]);
        loop {
            let (len, from) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
            if from != self.server {
                continue;
            }
            let msg = Message::from_vec(&buf[..len]).map_err(|e| e.to_string())?;
            if msg.metadata.id == id {
                return Ok(msg);
            }
        }
    }

    fn exchange_tcp(&self, query: &[u8]) -> std::result::Result<Message, String> {
        let io = |e: std::io::Error| e.to_string();
        let mut stream = TcpStream::connect_timeout(&self.server, self.timeout).map_err(io)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        let len = u16::try_from(query.len()).map_err(|e| e.to_string())?;
        stream.write_all(&len.to_be_bytes()).map_err(io)?;
        stream.write_all(query).map_err(io)?;
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).map_err(io)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).map_err(io)?;
        Message::from_vec(&buf).map_err(|e| e.to_string())
    }
}

fn fail(name: &Name, detail: impl ToString) -> Error {
    Error::Lookup {
        name: name.to_string(),
        detail: detail.to_string(),
    }
}
