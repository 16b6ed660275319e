//! The outbound queue: mail the user's clients submit for other domains, kept in the
//! store until every recipient's server has taken it or refused it for good.
//!
//! Each message is two files under [`QUEUE_DIR`]: `<id>.eml` (the message as it will be
//! sent, DKIM-signed when it was queued) and `<id>.json` (the [`Entry`]: the reverse path
//! and each recipient's state). Queueing is part of the submission's commit, so a client
//! hears `250` only once the message is in the store; a restart or a crash picks the
//! queue up from the store. The [`Sender`] works through it: an MX lookup per domain,
//! delivery with `mail-send` (STARTTLS when the peer offers it), retries with backoff on
//! temporary failures, and a delivery status notification (RFC 3464) into the sender's
//! INBOX when a recipient refuses for good or the message expires.
//!
//! A recipient is marked `sending` in a commit before its message is sent and `sent` in
//! one right after the peer's `250` (before `QUIT`); after a crash between the two the
//! outcome is unknown and the message is sent again (RFC 5321, section 6.1 prefers a
//! duplicate to a loss). The bytes sent again are the same, so a Kith receiver, which
//! remembers what each user got, keeps one copy; another server may keep two.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use kith_store::{EntryKind, Store, Transaction};
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;
use mail_send::SmtpClientBuilder;
use serde::{Deserialize, Serialize};

use crate::mailbox::{Error, Mailbox};

/// Where queued messages live.
pub const QUEUE_DIR: &str = "/mail/.queue";
/// The waits between attempts; the last repeats until the message expires.
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(60),
    Duration::from_secs(5 * 60),
    Duration::from_secs(15 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(4 * 60 * 60),
];
/// The headers a DKIM signature covers.
const SIGNED_HEADERS: [&str; 8] = [
    "From",
    "To",
    "Cc",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
];

/// One queued message's envelope and progress.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The reverse path.
    pub from: String,
    /// The signed-in user who submitted it (bounces go to their INBOX).
    pub user: String,
    /// Each recipient and how far it got.
    pub recipients: Vec<Recipient>,
    /// When it was queued, in milliseconds since the epoch.
    pub queued_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not before this time (milliseconds since the epoch).
    pub next_attempt_ms: i64,
}

/// One recipient of a queued message.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Recipient {
    /// The address.
    pub address: String,
    /// Its state.
    pub state: State,
    /// The last answer or error, for the bounce and `kith` tools.
    pub last_error: Option<String>,
}

/// How far delivery to one recipient got.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Still to send.
    Pending,
    /// Being sent (a crash here means it is sent again).
    Sending,
    /// Taken by the recipient's server.
    Sent,
    /// Refused for good, or expired; the sender was told.
    Failed,
}

impl State {
    /// Whether nothing more will be done for the recipient.
    pub fn is_final(self) -> bool {
        matches!(self, State::Sent | State::Failed)
    }
}

/// Adds a message for `to` to the queue in `tx`; returns its id.
pub fn enqueue(
    tx: &mut Transaction,
    user: &str,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<String, Error> {
    let now = kith_store::now_millis();
    let id = format!("{now}-{}", &blake3::hash(message).to_hex()[..12]);
    let entry = Entry {
        from: from.to_string(),
        user: user.to_string(),
        recipients: to
            .iter()
            .map(|address| Recipient {
                address: address.clone(),
                state: State::Pending,
                last_error: None,
            })
            .collect(),
        queued_ms: now,
        attempts: 0,
        next_attempt_ms: now,
    };
    tx.put(&format!("{QUEUE_DIR}/{id}.eml"), message)?;
    write_entry(tx, &id, &entry)?;
    Ok(id)
}

/// The queued messages' ids and entries, at the branch head.
pub fn list(store: &Store, branch: &str) -> Result<Vec<(String, Entry)>, Error> {
    let root = store.head_tree(branch)?;
    let Some((EntryKind::Dir, dir)) = store.find(&root, QUEUE_DIR)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for file in store.list(&dir, "/")? {
        let Some(id) = file.name.strip_suffix(".json") else {
            continue;
        };
        out.push((id.to_string(), parse_entry(id, &store.blob(&file.hash)?)?));
    }
    Ok(out)
}

fn parse_entry(id: &str, json: &[u8]) -> Result<Entry, Error> {
    serde_json::from_slice(json).map_err(|e| corrupt(&format!("{QUEUE_DIR}/{id}.json"), e))
}

fn write_entry(tx: &mut Transaction, id: &str, entry: &Entry) -> Result<(), Error> {
    let json = serde_json::to_vec_pretty(entry).expect("an entry always serializes");
    tx.put(&format!("{QUEUE_DIR}/{id}.json"), &json)?;
    Ok(())
}

/// Signs outgoing mail with the zone's DKIM key.
pub struct Dkim {
    key_pkcs8: Vec<u8>,
    domain: String,
    selector: String,
}

impl Dkim {
    /// A signer from a PKCS#8 PEM Ed25519 key, for `domain` under `selector`.
    pub fn from_pem(pem: &str, domain: &str, selector: &str) -> Result<Dkim, Error> {
        let der = pem_body(pem).ok_or_else(|| corrupt("the DKIM key", "not PEM"))?;
        Ed25519Key::from_pkcs8_maybe_unchecked_der(&der).map_err(|e| corrupt("the DKIM key", e))?;
        Ok(Dkim {
            key_pkcs8: der,
            domain: domain.to_string(),
            selector: selector.to_string(),
        })
    }

    /// `message` with a `DKIM-Signature` header in front.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(&self.key_pkcs8)
            .map_err(|e| corrupt("the DKIM key", e))?;
        let signature = DkimSigner::from_key(key)
            .domain(&self.domain)
            .selector(&self.selector)
            .headers(SIGNED_HEADERS)
            .sign(message)
            .map_err(|e| corrupt("DKIM signing", e))?;
        let mut out = signature.to_header().into_bytes();
        out.extend_from_slice(message);
        Ok(out)
    }
}

fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

/// Delivers the queue, as a background task of the mail service.
pub struct Sender {
    /// The store.
    pub store: Store,
    /// The branch the queue is on.
    pub branch: String,
    /// The author of queue commits.
    pub author: String,
    /// The name this server gives in EHLO.
    pub host: String,
    /// Name servers for MX lookups (empty: the system's).
    pub resolvers: Vec<SocketAddr>,
    /// The port peers listen on (25; tests use another).
    pub port: u16,
    /// How long a message may wait before it bounces.
    pub expire_after: Duration,
}

/// What one attempt at one domain came to, per recipient.
enum Outcome {
    Sent,
    Temporary(String),
    Permanent(String),
}

impl Sender {
    /// Works through the queue until the process ends: whenever the branch moves (a new
    /// message, a change from sync) and whenever a retry falls due.
    pub async fn run(self) {
        let watch = self.store.watch();
        let (wake, mut woken) = tokio::sync::mpsc::channel::<()>(1);
        std::thread::spawn(move || {
            while watch.recv().is_ok() {
                if wake.blocking_send(()).is_err() {
                    break;
                }
            }
        });
        self.recover();
        let resolver = self.resolver().await;
        loop {
            let wait = match self.pass(&resolver).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!("outbound queue: {e}");
                    Duration::from_secs(30)
                }
            };
            let _ = tokio::time::timeout(wait, woken.recv()).await;
        }
    }

    /// Puts recipients a crash left `sending` back to `pending`.
    fn recover(&self) {
        let result = self.update_all(|entry| {
            let mut changed = false;
            for r in &mut entry.recipients {
                if r.state == State::Sending {
                    r.state = State::Pending;
                    changed = true;
                }
            }
            changed
        });
        if let Err(e) = result {
            tracing::warn!("outbound queue recovery: {e}");
        }
    }

    /// One pass over the due messages; returns how long until the next is due.
    async fn pass(&self, resolver: &TokioResolver) -> Result<Duration, Error> {
        let now = kith_store::now_millis();
        let mut next = i64::MAX;
        for (id, entry) in list(&self.store, &self.branch)? {
            if entry.next_attempt_ms > now {
                next = next.min(entry.next_attempt_ms);
                continue;
            }
            self.attempt(resolver, &id, entry).await?;
        }
        let wait = next
            .saturating_sub(kith_store::now_millis())
            .clamp(0, 3_600_000);
        Ok(Duration::from_millis(wait as u64))
    }

    /// Tries every pending recipient of one message, domain by domain.
    async fn attempt(&self, resolver: &TokioResolver, id: &str, entry: Entry) -> Result<(), Error> {
        let root = self.store.head_tree(&self.branch)?;
        let Some(message) = self.store.get(&root, &format!("{QUEUE_DIR}/{id}.eml"))? else {
            return Err(corrupt(&format!("{QUEUE_DIR}/{id}.eml"), "missing"));
        };
        let mut by_domain: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in entry
            .recipients
            .iter()
            .filter(|r| r.state == State::Pending)
        {
            let domain = r.address.rsplit_once('@').map_or("", |(_, d)| d);
            by_domain
                .entry(domain.to_ascii_lowercase())
                .or_default()
                .push(r.address.clone());
        }
        for (domain, addresses) in by_domain {
            self.set_states(id, &addresses, |r| r.state = State::Sending)?;
            let outcomes = self
                .send_to_domain(resolver, &domain, &entry.from, &addresses, &message)
                .await;
            self.record(id, &outcomes)?;
        }
        Ok(())
    }

    /// Sends to one domain's mail servers, trying each MX in order.
    async fn send_to_domain(
        &self,
        resolver: &TokioResolver,
        domain: &str,
        from: &str,
        to: &[String],
        message: &[u8],
    ) -> Vec<(String, Outcome)> {
        let hosts = match mail_hosts(resolver, domain).await {
            Ok(hosts) if !hosts.is_empty() => hosts,
            Ok(_) => {
                return all(to, || {
                    Outcome::Permanent(format!("{domain} accepts no mail"))
                });
            }
            Err(e) => {
                return all(to, || {
                    Outcome::Temporary(format!("looking up {domain}: {e}"))
                });
            }
        };
        let mut last = String::new();
        for (name, ip) in hosts {
            match self.send_via(&name, ip, from, to, message).await {
                Ok(outcomes) => return outcomes,
                Err(e) => last = format!("{name} ({ip}): {e}"),
            }
        }
        all(to, || Outcome::Temporary(last.clone()))
    }

    /// The resolver for MX lookups, built once; waits and tries again while the system
    /// gives no DNS configuration (the queue keeps its messages meanwhile).
    async fn resolver(&self) -> TokioResolver {
        loop {
            match self.build_resolver() {
                Ok(resolver) => return resolver,
                Err(e) => tracing::warn!("outbound queue: no DNS resolver yet: {e}"),
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
    }

    fn build_resolver(&self) -> Result<TokioResolver, String> {
        let builder = if self.resolvers.is_empty() {
            system_resolver()?
        } else {
            TokioResolver::builder_with_config(
                resolver_config(&self.resolvers),
                TokioRuntimeProvider::default(),
            )
        };
        builder.build().map_err(|e| e.to_string())
    }

    /// One SMTP session with one server: STARTTLS when offered, then the message for
    /// every recipient it accepts. An error means nothing was sent.
    async fn send_via(
        &self,
        name: &str,
        ip: IpAddr,
        from: &str,
        to: &[String],
        message: &[u8],
    ) -> Result<Vec<(String, Outcome)>, mail_send::Error> {
        let builder = SmtpClientBuilder::new(ip.to_string(), self.port)
            .map_err(|e| mail_send::Error::Io(std::io::Error::other(e)))?
            .implicit_tls(false)
            .allow_invalid_certs()
            .helo_host(self.host.clone())
            .timeout(Duration::from_secs(120));
        tracing::debug!(name, %ip, "outbound: connecting");
        match builder.connect().await {
            Ok(client) => deliver_session(client, from, to, message).await,
            Err(mail_send::Error::MissingStartTls) => {
                deliver_session(builder.connect_plain().await?, from, to, message).await
            }
            Err(e) => Err(e),
        }
    }

    /// Records what each recipient's attempt came to and when to try again, in one
    /// commit; a message every recipient is done with leaves the queue in that commit,
    /// with a bounce to its sender when some refused it.
    fn record(&self, id: &str, outcomes: &[(String, Outcome)]) -> Result<(), Error> {
        for attempt in 0.. {
            let Some(mut entry) = self.entry(id)? else {
                return Ok(());
            };
            self.apply(&mut entry, outcomes);
            let mut tx = self.store.transaction(&self.branch)?;
            if entry.recipients.iter().all(|r| r.state.is_final()) {
                self.drop_entry(&mut tx, id, &entry)?;
            } else {
                write_entry(&mut tx, id, &entry)?;
            }
            match tx.commit(&self.author, &format!("mail: outbound {id}")) {
                Ok(_) => return Ok(()),
                Err(kith_store::Error::BranchMoved { .. }) if attempt < 10 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }

    /// The entry of message `id`, if it is still queued.
    fn entry(&self, id: &str) -> Result<Option<Entry>, Error> {
        let root = self.store.head_tree(&self.branch)?;
        let file = format!("{QUEUE_DIR}/{id}.json");
        match self.store.get(&root, &file)? {
            Some(json) => parse_entry(id, &json).map(Some),
            None => Ok(None),
        }
    }

    /// Applies one attempt's outcomes to an entry and schedules the next attempt.
    fn apply(&self, entry: &mut Entry, outcomes: &[(String, Outcome)]) {
        entry.attempts += 1;
        let expired =
            kith_store::now_millis() >= entry.queued_ms + self.expire_after.as_millis() as i64;
        for r in &mut entry.recipients {
            let Some((_, outcome)) = outcomes.iter().find(|(a, _)| *a == r.address) else {
                continue;
            };
            (r.state, r.last_error) = match outcome {
                Outcome::Sent => (State::Sent, None),
                Outcome::Permanent(why) => (State::Failed, Some(why.clone())),
                Outcome::Temporary(why) if expired => (State::Failed, Some(why.clone())),
                Outcome::Temporary(why) => (State::Pending, Some(why.clone())),
            };
        }
        let wait = BACKOFF[(entry.attempts as usize - 1).min(BACKOFF.len() - 1)];
        entry.next_attempt_ms = kith_store::now_millis() + wait.as_millis() as i64;
    }

    /// Removes a finished message from the queue in `tx`, bouncing its failures.
    fn drop_entry(&self, tx: &mut Transaction, id: &str, entry: &Entry) -> Result<(), Error> {
        tx.remove(&format!("{QUEUE_DIR}/{id}.json"))?;
        tx.remove(&format!("{QUEUE_DIR}/{id}.eml"))?;
        let failed: Vec<&Recipient> = entry
            .recipients
            .iter()
            .filter(|r| r.state == State::Failed)
            .collect();
        if failed.is_empty() || entry.from.is_empty() {
            return Ok(());
        }
        let inbox = Mailbox::of(&entry.user, "INBOX")?;
        inbox.create(tx, (kith_store::now_millis() / 1000) as u32)?;
        inbox.add(tx, &self.bounce(entry, &failed), &Default::default())?;
        inbox.assign_uids(&self.store, tx)?;
        Ok(())
    }

    /// A delivery status notification (RFC 3464) for the failed recipients.
    fn bounce(&self, entry: &Entry, failed: &[&Recipient]) -> Vec<u8> {
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc2822)
            .unwrap_or_default();
        let boundary = format!("kith-dsn-{}", kith_store::now_millis());
        let list: String = failed
            .iter()
            .map(|r| {
                format!(
                    "  {}: {}\r\n",
                    r.address,
                    r.last_error.as_deref().unwrap_or("refused")
                )
            })
            .collect();
        let status: String = failed
            .iter()
            .map(|r| {
                format!(
                    "\r\nFinal-Recipient: rfc822;{}\r\nAction: failed\r\nStatus: 5.0.0\r\nDiagnostic-Code: smtp;{}\r\n",
                    r.address,
                    r.last_error.as_deref().unwrap_or("refused").replace(['\r', '\n'], " ")
                )
            })
            .collect();
        format!(
            "From: Mail Delivery System <postmaster@{host}>\r\nTo: <{from}>\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {date}\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour message could not be delivered to:\r\n{list}\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;{host}\r\n{status}\r\n--{boundary}--\r\n",
            host = self.host,
            from = entry.from,
        )
        .into_bytes()
    }

    fn set_states(
        &self,
        id: &str,
        addresses: &[String],
        change: impl Fn(&mut Recipient),
    ) -> Result<(), Error> {
        self.update(id, |entry| {
            entry
                .recipients
                .iter_mut()
                .filter(|r| addresses.contains(&r.address))
                .for_each(&change);
            true
        })
    }

    /// Rewrites one entry with `change` in a commit of its own.
    fn update(&self, id: &str, change: impl Fn(&mut Entry) -> bool) -> Result<(), Error> {
        self.update_where(|i| i == id, change)
    }

    fn update_all(&self, change: impl Fn(&mut Entry) -> bool) -> Result<(), Error> {
        self.update_where(|_| true, change)
    }

    fn update_where(
        &self,
        which: impl Fn(&str) -> bool,
        change: impl Fn(&mut Entry) -> bool,
    ) -> Result<(), Error> {
        for attempt in 0.. {
            let mut tx = self.store.transaction(&self.branch)?;
            let mut changed = false;
            for (id, mut entry) in list(&self.store, &self.branch)? {
                if which(&id) && change(&mut entry) {
                    write_entry(&mut tx, &id, &entry)?;
                    changed = true;
                }
            }
            if !changed {
                return Ok(());
            }
            match tx.commit(&self.author, "mail: outbound queue") {
                Ok(_) => return Ok(()),
                Err(kith_store::Error::BranchMoved { .. }) if attempt < 10 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }
}

/// A resolver builder on the system's configuration (`/etc/resolv.conf`).
#[cfg(not(target_os = "hermit"))]
fn system_resolver() -> Result<hickory_resolver::ResolverBuilder<TokioRuntimeProvider>, String> {
    TokioResolver::builder_tokio().map_err(|e| e.to_string())
}

/// A unikernel has no system resolver configuration: name servers must be given.
#[cfg(target_os = "hermit")]
fn system_resolver() -> Result<hickory_resolver::ResolverBuilder<TokioRuntimeProvider>, String> {
    Err("no name server given, and a unikernel has no /etc/resolv.conf".into())
}

/// A resolver configuration that asks exactly `servers` (UDP, then TCP).
pub fn resolver_config(servers: &[SocketAddr]) -> hickory_resolver::config::ResolverConfig {
    use hickory_resolver::config::{NameServerConfig, ResolverConfig};
    let servers = servers
        .iter()
        .map(|a| {
            let mut server = NameServerConfig::udp_and_tcp(a.ip());
            server
                .connections
                .iter_mut()
                .for_each(|c| c.port = a.port());
            server
        })
        .collect();
    ResolverConfig::from_parts(None, vec![], servers)
}

fn corrupt(path: &str, detail: impl std::fmt::Display) -> Error {
    Error::Corrupt {
        path: path.to_string(),
        detail: detail.to_string(),
    }
}

/// The addresses of a domain's mail servers, best first (RFC 5321, section 5.1).
async fn mail_hosts(
    resolver: &TokioResolver,
    domain: &str,
) -> Result<Vec<(String, IpAddr)>, String> {
    let names: Vec<String> = match resolver.mx_lookup(format!("{domain}.")).await {
        Ok(mx) => {
            let mut records: Vec<_> = mx
                .answers()
                .iter()
                .filter_map(|r| match &r.data {
                    hickory_resolver::proto::rr::RData::MX(mx) => {
                        Some((mx.preference, mx.exchange.to_ascii()))
                    }
                    _ => None,
                })
                .collect();
            records.sort();
            if records.iter().any(|(_, n)| n == ".") {
                return Ok(Vec::new());
            }
            records.into_iter().map(|(_, n)| n).collect()
        }
        Err(e) if e.is_no_records_found() => vec![format!("{domain}.")],
        Err(e) => return Err(e.to_string()),
    };
    let mut out = Vec::new();
    for name in names {
        if let Ok(ips) = resolver.lookup_ip(name.as_str()).await {
            out.extend(
                ips.iter()
                    .map(|ip| (name.trim_end_matches('.').to_string(), ip)),
            );
        }
    }
    Ok(out)
}

/// The same outcome for every recipient.
fn all(to: &[String], outcome: impl Fn() -> Outcome) -> Vec<(String, Outcome)> {
    to.iter().map(|a| (a.clone(), outcome())).collect()
}

/// MAIL, RCPT for each recipient, DATA once for those accepted.
async fn deliver_session<T>(
    mut client: mail_send::SmtpClient<T>,
    from: &str,
    to: &[String],
    message: &[u8],
) -> Result<Vec<(String, Outcome)>, mail_send::Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let params = Default::default();
    if let Err(e) = client.mail_from(from, &params).await {
        return Ok(all(to, || classify(&e)));
    }
    let mut outcomes = Vec::new();
    let mut accepted = Vec::new();
    for address in to {
        match client.rcpt_to(address, &params).await {
            Ok(()) => accepted.push(address.clone()),
            Err(e) => outcomes.push((address.clone(), classify(&e))),
        }
    }
    if !accepted.is_empty() {
        let result = client.data(message).await;
        for address in accepted {
            let outcome = match &result {
                Ok(_) => Outcome::Sent,
                Err(e) => classify(e),
            };
            outcomes.push((address, outcome));
        }
    }
    // The outcome is recorded before QUIT: the time between the peer's 250 and the
    // record is the only time a crash makes the message go out again.
    tokio::spawn(async move {
        let _ = client.quit().await;
    });
    Ok(outcomes)
}

/// A 5xx reply is final; anything else is worth another try.
fn classify(e: &mail_send::Error) -> Outcome {
    match e {
        mail_send::Error::UnexpectedReply(r) if r.code() >= 500 => {
            Outcome::Permanent(format!("{} {}", r.code(), r.message()))
        }
        mail_send::Error::UnexpectedReply(r) => {
            Outcome::Temporary(format!("{} {}", r.code(), r.message()))
        }
        other => Outcome::Temporary(other.to_string()),
    }
}
