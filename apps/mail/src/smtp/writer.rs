//! One thread commits the deliveries of every SMTP connection, as many messages a commit
//! as are waiting (group commit).
//!
//! A connection hands its message over and waits; the writer takes every message that
//! has arrived meanwhile, puts them in their mailboxes (and the outbound queue) in one
//! transaction, gives UIDs once per mailbox, commits, and then answers each connection.
//! So parallel senders share one `fsync` and never race each other for the branch, and a
//! `250` still means the message is in the store. Connections in the middle of a mail
//! transaction are counted ([`Writer::busy`]); the writer waits up to [`GATHER`] for
//! their messages too, so a few senders fall into step and share commits instead of
//! each waiting out the other's.
//!
//! Each message a user got leaves a marker, `/mail/<user>/.delivered/<day>/<blake3>`
//! (`day` counted from the Unix epoch), so a resend is recognised. A day's folder is
//! dropped once it is more than [`Retention::days`] days old, in the first commit of
//! each day that delivers to the user; markers from before days were kept (directly
//! under `.delivered/`) go with the first folder dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use kith_store::{EntryKind, Store, Transaction};

use super::session::Recipient;
use crate::mailbox::{Error, Mailbox};
use crate::memory::{self, SETTLE};
use crate::queue;

/// The folder of a user's delivery markers (content hashes of messages received).
pub const DELIVERED: &str = ".delivered";
/// Where inbound mail goes.
pub const INBOX: &str = "INBOX";
/// Where inbound mail goes that its sender's DMARC policy says to quarantine.
pub const JUNK: &str = "Junk";
/// Most messages in one commit.
const MAX_BATCH: usize = 256;
/// How long the writer waits for the messages of connections mid-transaction.
pub const GATHER: Duration = Duration::from_millis(3);
/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// How long delivery markers are kept, and the clock that dates them.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// Days a marker is kept: a resend within this many days is recognised.
    pub days: u32,
    /// Milliseconds since the Unix epoch, now.
    pub clock: fn() -> i64,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            days: 7,
            clock: kith_store::now_millis,
        }
    }
}

/// One message ready to store.
pub struct Delivery {
    /// The local recipients' mailbox it goes to: [`INBOX`] or [`JUNK`].
    pub folder: &'static str,
    /// Its recipients.
    pub to: Vec<Recipient>,
    /// The reverse path.
    pub from: String,
    /// The signed-in user who submitted it, if any.
    pub user: Option<String>,
    /// The bytes as the client sent them (what duplicates are recognised by).
    pub sent: Vec<u8>,
    /// The bytes for local mailboxes (with our trace headers).
    pub stored: Vec<u8>,
    /// The bytes for the outbound queue (DKIM-signed), when there are remote recipients.
    pub outgoing: Vec<u8>,
}

type Job = (Delivery, mpsc::Sender<Result<String, String>>);

/// The handle connections give their messages to.
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    busy: Arc<AtomicUsize>,
}

/// Counts one connection as mid-transaction until dropped.
pub struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Writer {
    /// Starts the writer thread for `branch`, committing as `author` and keeping
    /// delivery markers as long as `retention` says.
    pub fn spawn(
        store: Store,
        branch: String,
        author: String,
        retention: Retention,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let busy = Arc::new(AtomicUsize::new(0));
        let mut committer = Committer {
            store,
            branch,
            author,
            retention,
            pruned: HashMap::new(),
        };
        let counted = Arc::clone(&busy);
        std::thread::Builder::new()
            .name("smtp-writer".into())
            .spawn(move || committer.run(&queue, &counted))?;
        Ok(Writer { jobs, busy })
    }

    /// Counts a connection as mid-transaction (from `MAIL` until its reply after the
    /// data) while the guard lives.
    pub fn busy(&self) -> Busy {
        self.busy.fetch_add(1, Ordering::SeqCst);
        Busy(Arc::clone(&self.busy))
    }

    /// Stores a message; returns the commit's short hash once it is durable.
    pub fn deliver(&self, delivery: Delivery) -> Result<String, String> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send((delivery, reply))
            .map_err(|_| "the mail writer has stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the mail writer has stopped".to_string())?
    }
}

/// The writer thread's state.
struct Committer {
    store: Store,
    branch: String,
    author: String,
    retention: Retention,
    /// The day each user's old markers were last pruned.
    pruned: HashMap<String, i64>,
}

impl Committer {
    /// Commits batches of deliveries until every [`Writer`] is gone; memory goes back to
    /// the system once no delivery came for [`SETTLE`].
    fn run(&mut self, queue: &mpsc::Receiver<Job>, busy: &AtomicUsize) {
        let mut settled = true;
        loop {
            let first = match queue.recv_timeout(SETTLE) {
                Ok(first) => first,
                Err(RecvTimeoutError::Timeout) => {
                    if !settled {
                        memory::give_back(&self.store);
                        settled = true;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            settled = false;
            let batch = gather(first, queue, busy);
            let deliveries: Vec<&Delivery> = batch.iter().map(|(d, _)| d).collect();
            let result = self.commit(&deliveries).map_err(|e| e.to_string());
            for (_, reply) in batch {
                let _ = reply.send(result.clone());
            }
        }
    }

    /// Stores every delivery in one commit; returns its short hash.
    fn commit(&mut self, deliveries: &[&Delivery]) -> Result<String, Error> {
        let today = (self.retention.clock)().div_euclid(DAY_MS);
        let store = &self.store;
        for attempt in 0.. {
            let mut tx = store.transaction(&self.branch)?;
            let mut mailboxes = BTreeSet::new();
            for delivery in deliveries {
                let when = (today, self.retention.days);
                add(&mut tx, delivery, when, &mut mailboxes)?;
            }
            let users: BTreeSet<&String> = mailboxes.iter().map(|(user, _)| user).collect();
            let due: Vec<&String> = (users.into_iter())
                .filter(|user| self.pruned.get(*user) != Some(&today))
                .collect();
            for (user, folder) in &mailboxes {
                Mailbox::of(user, folder)?.assign_uids(store, &mut tx)?;
            }
            for user in &due {
                prune(&mut tx, user, today - i64::from(self.retention.days))?;
            }
            let message = format!("mail: deliver {} message(s)", deliveries.len());
            match tx.commit(&self.author, &message) {
                Ok(commit) => {
                    for user in due {
                        self.pruned.insert(user.clone(), today);
                    }
                    return Ok(commit.map(|h| h.short()).unwrap_or_default());
                }
                Err(kith_store::Error::BranchMoved { .. }) if attempt < 10 => continue,
                Err(e) => return Err(e.into()),
            }
        }
        unreachable!("the loop returns")
    }
}

/// The jobs to commit together: `first`, those waiting, and those of connections
/// mid-transaction that arrive within [`GATHER`].
fn gather(first: Job, queue: &mpsc::Receiver<Job>, busy: &AtomicUsize) -> Vec<Job> {
    let deadline = Instant::now() + GATHER;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        let wait = if batch.len() < busy.load(Ordering::SeqCst) {
            deadline.saturating_duration_since(Instant::now())
        } else {
            Duration::ZERO
        };
        match queue.recv_timeout(wait) {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Puts one message in its local recipients' mailboxes (noting which, by user and
/// folder, in `mailboxes`) and in the outbound queue for the remote ones.
fn add(
    tx: &mut Transaction,
    delivery: &Delivery,
    when: (i64, u32),
    mailboxes: &mut BTreeSet<(String, &'static str)>,
) -> Result<(), Error> {
    let mut remote = Vec::new();
    for recipient in &delivery.to {
        match recipient {
            Recipient::Remote(address) => remote.push(address.clone()),
            Recipient::Local(user) => {
                if !first_delivery(tx, user, &delivery.sent, when)? {
                    continue;
                }
                let mailbox = Mailbox::of(user, delivery.folder)?;
                mailbox.create(tx, (kith_store::now_millis() / 1000) as u32)?;
                mailbox.add(tx, &delivery.stored, &Default::default())?;
                mailboxes.insert((user.clone(), delivery.folder));
            }
        }
    }
    if !remote.is_empty() {
        let user = delivery.user.as_deref().unwrap_or_default();
        queue::enqueue(tx, user, &delivery.from, &remote, &delivery.outgoing)?;
    }
    Ok(())
}

/// Notes that `user` got `sent` on day `today`; false when they got it within the
/// `days` before (or before days were kept): a sender that retries after losing our
/// `250` (its crash, a cut connection) does not deliver twice.
fn first_delivery(
    tx: &mut Transaction,
    user: &str,
    sent: &[u8],
    (today, days): (i64, u32),
) -> Result<bool, Error> {
    let folder = format!("/mail/{user}/{DELIVERED}");
    let name = blake3::hash(sent).to_hex();
    let undated = std::iter::once(format!("{folder}/{name}"));
    let dated = (today - i64::from(days)..=today).map(|day| format!("{folder}/{day}/{name}"));
    for marker in undated.chain(dated) {
        if tx.find(&marker)?.is_some() {
            return Ok(false);
        }
    }
    tx.put(&format!("{folder}/{today}/{name}"), b"")?;
    Ok(true)
}

/// Drops `user`'s day folders of markers older than `oldest` (a day number), and with
/// the first of them the undated markers.
fn prune(tx: &mut Transaction, user: &str, oldest: i64) -> Result<(), Error> {
    let folder = format!("/mail/{user}/{DELIVERED}");
    let entries = tx.list(&folder)?;
    let expired = |name: &str| name.parse::<i64>().is_ok_and(|day| day < oldest);
    let dropping = entries
        .iter()
        .any(|e| e.kind == EntryKind::Dir && expired(&e.name));
    if !dropping {
        return Ok(());
    }
    for entry in entries {
        if entry.kind == EntryKind::File || expired(&entry.name) {
            tx.remove(&format!("{folder}/{}", entry.name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;

    static NOW: AtomicI64 = AtomicI64::new(0);

    fn clock() -> i64 {
        NOW.load(Ordering::SeqCst)
    }

    fn on_day(day: i64) {
        NOW.store(day * DAY_MS + 3_600_000, Ordering::SeqCst);
    }

    fn delivery(body: &str) -> Delivery {
        let sent = format!("Subject: {body}\r\n\r\n{body}\r\n").into_bytes();
        Delivery {
            folder: INBOX,
            to: vec![Recipient::Local("me".into())],
            from: "friend@example.org".into(),
            user: None,
            stored: sent.clone(),
            sent,
            outgoing: Vec::new(),
        }
    }

    fn count(store: &Store) -> usize {
        let root = store.head_tree("main").unwrap();
        let inbox = Mailbox::of("me", "INBOX").unwrap();
        inbox.messages(store, &root).unwrap().len()
    }

    #[test]
    fn markers_dedupe_for_the_kept_days_then_go() {
        let store = Store::memory();
        let mut committer = Committer {
            store: store.clone(),
            branch: "main".into(),
            author: "test".into(),
            retention: Retention { days: 7, clock },
            pruned: HashMap::new(),
        };
        let mut deliver = |day: i64, body: &str| {
            on_day(day);
            committer.commit(&[&delivery(body)]).unwrap();
            count(&store)
        };
        assert_eq!(deliver(100, "a"), 1);
        assert_eq!(deliver(100, "a"), 1, "a resend the same day");
        assert_eq!(deliver(107, "a"), 1, "a resend on the last kept day");
        assert_eq!(deliver(108, "b"), 2);
        let root = store.head_tree("main").unwrap();
        let days: Vec<String> = (store.list(&root, "/mail/me/.delivered").unwrap())
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(days, ["108"], "day 100 is more than 7 days old");
        assert_eq!(deliver(108, "a"), 3, "a resend after the kept days is new");
    }
}
