//! Who really sent an inbound message: SPF for the client's address, DKIM signatures,
//! and the From domain's DMARC policy over both (mail-auth), written into an
//! `Authentication-Results` header (RFC 8601) in front of the message.
//!
//! Mail the user submitted after signing in is not checked: the header records the
//! sign-in instead. Mail that fails DMARC (neither an aligned DKIM signature nor an
//! aligned SPF pass) gets what its From domain's policy asks ([`Disposition`]): refused
//! with `550 5.7.1` for `p=reject`, filed in the recipient's `Junk` for `p=quarantine`.
//! A DNS failure during the checks is recorded and never refuses mail.
//!
//! A sender's mail often comes in bursts from one address, so the SPF result for a
//! client address, HELO name and reverse path, and the DMARC result of an unsigned
//! message for a From domain and SPF result, are reused for [`REUSE`]: shorter than
//! any DNS TTL worth publishing, and kept even when the lookups failed, which a
//! resolver does not cache (a refused query, a timeout).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::config::ResolverOpts;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dmarc::Policy;
use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, AuthenticationResults, DmarcOutput, DmarcResult, MessageAuthenticator,
    SpfOutput,
};

use super::session::Envelope;

/// How long a check's result is reused.
pub const REUSE: Duration = Duration::from_secs(60);
/// Most results remembered; past this the oldest half is forgotten.
const REMEMBERED: usize = 4096;

/// What to do with a message, after its checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Into the recipients' INBOX.
    Deliver,
    /// Into the recipients' `Junk`: it failed DMARC and its domain says `p=quarantine`.
    Quarantine,
    /// Refused: it failed DMARC and the domain named here says `p=reject`.
    Reject(String),
}

impl Disposition {
    /// What the From domain's policy asks for a message with this DMARC result.
    fn of(dmarc: &DmarcOutput) -> Disposition {
        if !matches!(dmarc.result(), DmarcResult::Fail(_)) {
            return Disposition::Deliver;
        }
        match dmarc.policy() {
            Policy::Reject => Disposition::Reject(dmarc.domain().to_string()),
            Policy::Quarantine => Disposition::Quarantine,
            Policy::None | Policy::Unspecified => Disposition::Deliver,
        }
    }
}

/// Checks inbound mail against the sender's DNS.
pub struct Checker {
    authenticator: MessageAuthenticator,
    runtime: tokio::runtime::Handle,
    host: String,
    spf: Recent<(IpAddr, String, String), SpfOutput>,
    dmarc: Recent<(String, String, String), DmarcOutput>,
}

/// Results of the last [`REUSE`], by what they depend on.
struct Recent<K, V>(Mutex<HashMap<K, (Instant, V)>>);

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    fn new() -> Recent<K, V> {
        Recent(Mutex::new(HashMap::new()))
    }

    fn get(&self, key: &K) -> Option<V> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (at, value) = map.get(key)?;
        (at.elapsed() < REUSE).then(|| value.clone())
    }

    fn put(&self, key: K, value: V) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED {
            let mut ages: Vec<Instant> = map.values().map(|(at, _)| *at).collect();
            let (_, median, _) = ages.select_nth_unstable(REMEMBERED / 2);
            let median = *median;
            map.retain(|_, (at, _)| *at > median);
        }
        map.insert(key, (Instant::now(), value));
    }
}

impl Checker {
    /// A checker that asks `resolvers` (the system's when empty), running its lookups on
    /// `runtime`; `host` names this server in the results.
    pub fn new(
        resolvers: &[SocketAddr],
        runtime: tokio::runtime::Handle,
        host: &str,
    ) -> Result<Checker, String> {
        let authenticator = if resolvers.is_empty() {
            system_authenticator()
        } else {
            let config = crate::queue::resolver_config(resolvers);
            MessageAuthenticator::new(config, ResolverOpts::default()).map_err(|e| e.to_string())
        }
        .map_err(|e| format!("setting up the DNS resolver for SPF, DKIM and DMARC: {e}"))?;
        Ok(Checker {
            authenticator,
            runtime,
            host: host.to_string(),
            spf: Recent::new(),
            dmarc: Recent::new(),
        })
    }

    /// The `Authentication-Results` header for a message from `peer`, and what its
    /// sender's DMARC policy asks. Blocks the calling thread (which must not be one of
    /// `runtime`'s) while DNS answers.
    pub fn check(&self, envelope: &Envelope, peer: IpAddr) -> (String, Disposition) {
        if let Some(user) = &envelope.user {
            let header = format!(
                "Authentication-Results: {}; auth=pass smtp.auth={user}\r\n",
                self.host
            );
            return (header, Disposition::Deliver);
        }
        let Some(message) = AuthenticatedMessage::parse(&envelope.data) else {
            let header = format!(
                "Authentication-Results: {}; dkim=permerror (unparsable message)\r\n",
                self.host
            );
            return (header, Disposition::Deliver);
        };
        self.runtime.block_on(self.verify(&message, envelope, peer))
    }

    async fn verify(
        &self,
        message: &AuthenticatedMessage<'_>,
        envelope: &Envelope,
        peer: IpAddr,
    ) -> (String, Disposition) {
        let dkim = self.authenticator.verify_dkim(message).await;
        let helo = envelope.helo.as_str();
        let spf = self.spf(envelope, peer).await;
        let from_domain = envelope.from.rsplit_once('@').map_or(helo, |(_, d)| d);
        let key = (
            from_domain.to_ascii_lowercase(),
            message.from().to_ascii_lowercase(),
            format!("{:?}", spf.result()),
        );
        let reused = dkim.is_empty().then(|| self.dmarc.get(&key)).flatten();
        let dmarc = match reused {
            Some(dmarc) => dmarc,
            None => {
                let params = DmarcParameters::new(message, &dkim, from_domain, &spf);
                let dmarc = self.authenticator.verify_dmarc(params).await;
                if dkim.is_empty() {
                    self.dmarc.put(key, dmarc.clone());
                }
                dmarc
            }
        };
        let header = AuthenticationResults::new(&self.host)
            .with_dkim_results(&dkim, message.from())
            .with_spf_mailfrom_result(&spf, peer, &envelope.from, helo)
            .with_dmarc_result(&dmarc)
            .to_header();
        (header, Disposition::of(&dmarc))
    }

    /// The SPF result for the client at `peer` and the envelope's HELO and reverse path.
    async fn spf(&self, envelope: &Envelope, peer: IpAddr) -> SpfOutput {
        let key = (
            peer,
            envelope.helo.to_ascii_lowercase(),
            envelope.from.to_ascii_lowercase(),
        );
        if let Some(spf) = self.spf.get(&key) {
            return spf;
        }
        let params = SpfParameters::verify(peer, &envelope.helo, &self.host, &envelope.from);
        let spf = self.authenticator.verify_spf(params).await;
        self.spf.put(key, spf.clone());
        spf
    }
}

/// The resolver of the system's configuration (`/etc/resolv.conf`).
#[cfg(not(target_os = "hermit"))]
fn system_authenticator() -> Result<MessageAuthenticator, String> {
    MessageAuthenticator::new_system_conf().map_err(|e| e.to_string())
}

/// A unikernel has no system resolver configuration: name servers must be given.
#[cfg(target_os = "hermit")]
fn system_authenticator() -> Result<MessageAuthenticator, String> {
    Err("no name server given, and a unikernel has no /etc/resolv.conf".into())
}
