//! One thread commits the deliveries of every SMTP connection, as many messages a commit
//! as are waiting (group commit).
//!
//! A connection hands its message over and waits; the writer takes every message that
//! has arrived meanwhile, puts them in their mailboxes (and the outbound queue) in one
//! transaction, gives UIDs once per mailbox, commits, and then answers each connection.
//! So parallel senders share one `fsync` and never race each other for the branch, and a
//! `250` still means the message is in the store.

use std::collections::BTreeSet;
use std::sync::mpsc;

use kith_store::{Store, Transaction};

use super::session::Recipient;
use crate::mailbox::{Error, Mailbox};
use crate::queue;

/// The folder of a user's delivery markers (content hashes of messages received).
pub const DELIVERED: &str = ".delivered";
/// Most messages in one commit.
const MAX_BATCH: usize = 256;

/// One message ready to store.
pub struct Delivery {
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
}

impl Writer {
    /// Starts the writer thread for `branch`, committing as `author`.
    pub fn spawn(store: Store, branch: String, author: String) -> std::io::Result<Writer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("smtp-writer".into())
            .spawn(move || run(&store, &branch, &author, &queue))?;
        Ok(Writer { jobs })
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

fn run(store: &Store, branch: &str, author: &str, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let deliveries: Vec<&Delivery> = batch.iter().map(|(d, _)| d).collect();
        let result = commit(store, branch, author, &deliveries).map_err(|e| e.to_string());
        for (_, reply) in batch {
            let _ = reply.send(result.clone());
        }
    }
}

/// Stores every delivery in one commit; returns its short hash.
fn commit(
    store: &Store,
    branch: &str,
    author: &str,
    deliveries: &[&Delivery],
) -> Result<String, Error> {
    for attempt in 0.. {
        let mut tx = store.transaction(branch)?;
        let mut mailboxes = BTreeSet::new();
        for delivery in deliveries {
            add(store, &mut tx, delivery, &mut mailboxes)?;
        }
        for user in &mailboxes {
            Mailbox::of(user, "INBOX")?.assign_uids(store, &mut tx)?;
        }
        let message = format!("mail: deliver {} message(s)", deliveries.len());
        match tx.commit(author, &message) {
            Ok(commit) => return Ok(commit.map(|h| h.short()).unwrap_or_default()),
            Err(kith_store::Error::BranchMoved { .. }) if attempt < 10 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns")
}

/// Puts one message in its local recipients' INBOXes (noting which in `mailboxes`)
/// and in the outbound queue for the remote ones.
fn add(
    store: &Store,
    tx: &mut Transaction,
    delivery: &Delivery,
    mailboxes: &mut BTreeSet<String>,
) -> Result<(), Error> {
    let mut remote = Vec::new();
    for recipient in &delivery.to {
        match recipient {
            Recipient::Remote(address) => remote.push(address.clone()),
            Recipient::Local(user) => {
                if !first_delivery(store, tx, user, &delivery.sent)? {
                    continue;
                }
                let inbox = Mailbox::of(user, "INBOX")?;
                inbox.create(store, tx, (kith_store::now_millis() / 1000) as u32)?;
                inbox.add(tx, &delivery.stored, &Default::default())?;
                mailboxes.insert(user.clone());
            }
        }
    }
    if !remote.is_empty() {
        let user = delivery.user.as_deref().unwrap_or_default();
        queue::enqueue(tx, user, &delivery.from, &remote, &delivery.outgoing)?;
    }
    Ok(())
}

/// Notes that `user` got `sent`; false when they got it before: a sender that retries
/// after losing our `250` (its crash, a cut connection) does not deliver twice.
fn first_delivery(
    store: &Store,
    tx: &mut Transaction,
    user: &str,
    sent: &[u8],
) -> Result<bool, Error> {
    let marker = format!("/mail/{user}/{DELIVERED}/{}", blake3::hash(sent).to_hex());
    if store.find(&tx.tree()?, &marker)?.is_some() {
        return Ok(false);
    }
    tx.put(&marker, b"")?;
    Ok(true)
}
