//! The one writer: every change a request makes becomes part of a commit.
//!
//! Requests send a [`Plan`] (a function from the current state to file changes, or a
//! refusal) to one writer task. The writer takes every plan waiting, evaluates them in
//! order against the branch head (each seeing the ones before it), and commits the
//! accepted changes as one commit; when another process moved the branch meanwhile, it
//! evaluates them again on the new head. So concurrent clients cost one fsync per batch,
//! preconditions (`If-Match`, UID uniqueness) hold at the commit they land in, and
//! nothing is lost to a race.

use std::collections::HashMap;

use kith_store::{EntryKind, Hash, Store};
use tokio::sync::{mpsc, oneshot};

use crate::kind::Refusal;

/// How many plans one commit takes at most.
const MAX_BATCH: usize = 256;
/// How often a batch is re-evaluated after losing a race before giving up.
const MAX_RETRIES: usize = 50;

/// One file change.
#[derive(Clone, Debug)]
pub enum Change {
    /// Write a file.
    Put(String, Vec<u8>),
    /// Remove a file or folder.
    Remove(String),
}

/// A request's change: evaluated against the state it will commit on.
pub type Plan = Box<dyn Fn(&View<'_>) -> Result<Vec<Change>, Refusal> + Send>;

/// The state a plan is evaluated against: the branch head plus the changes of the plans
/// before it in the batch.
pub struct View<'a> {
    store: &'a Store,
    root: Hash,
    overlay: &'a HashMap<String, Option<Hash>>,
}

impl View<'_> {
    /// The store.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// The root tree the batch is based on (without the batch's own changes).
    pub fn base_root(&self) -> Hash {
        self.root
    }

    /// The blob at `path`, if a file is there.
    pub fn file(&self, path: &str) -> Result<Option<Hash>, Refusal> {
        if let Some(v) = self.overlay.get(path) {
            return Ok(*v);
        }
        if self.removed_above(path) {
            return Ok(None);
        }
        match self.store.find(&self.root, path).map_err(internal)? {
            Some((EntryKind::File, h)) => Ok(Some(h)),
            _ => Ok(None),
        }
    }

    /// The bytes at `path`, if a file is there.
    pub fn read(&self, path: &str) -> Result<Option<Vec<u8>>, Refusal> {
        match self.file(path)? {
            Some(h) => self.store.blob(&h).map(Some).map_err(internal),
            None => Ok(None),
        }
    }

    /// Whether a folder is at `path`.
    pub fn is_dir(&self, path: &str) -> Result<bool, Refusal> {
        let prefix = format!("{path}/");
        if self.overlay.get(path) == Some(&None) {
            return Ok(false);
        }
        if self
            .overlay
            .iter()
            .any(|(k, v)| v.is_some() && k.starts_with(&prefix))
        {
            return Ok(true);
        }
        if self.removed_above(path) {
            return Ok(false);
        }
        let found = self.store.find(&self.root, path).map_err(internal)?;
        Ok(matches!(found, Some((EntryKind::Dir, _))))
    }

    fn removed_above(&self, path: &str) -> bool {
        path.match_indices('/')
            .skip(1)
            .any(|(i, _)| self.overlay.get(&path[..i]) == Some(&None))
    }
}

/// A refusal for a store failure.
pub fn internal(e: kith_store::Error) -> Refusal {
    tracing::error!("store: {e}");
    Refusal::plain(
        http::StatusCode::INTERNAL_SERVER_ERROR,
        format!("store: {e}"),
    )
}

struct Job {
    summary: String,
    plan: Plan,
    reply: oneshot::Sender<Result<Hash, Refusal>>,
}

/// The handle requests use to reach the writer task.
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::UnboundedSender<Job>,
}

impl Writer {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(store: Store, branch: String, author: String) -> Writer {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, branch, author, rx));
        Writer { tx }
    }

    /// Submits a plan; resolves to the commit it landed in, or the refusal.
    pub async fn submit(&self, summary: String, plan: Plan) -> Result<Hash, Refusal> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            summary,
            plan,
            reply,
        };
        let gone = || Refusal::plain(http::StatusCode::SERVICE_UNAVAILABLE, "writer stopped");
        self.tx.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

async fn run(store: Store, branch: String, author: String, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (store, branch, author) = (store.clone(), branch.clone(), author.clone());
        let done =
            tokio::task::spawn_blocking(move || commit_batch(&store, &branch, &author, batch));
        if let Err(e) = done.await {
            tracing::error!("dav writer: {e}");
        }
    }
}

/// Evaluates and commits one batch, retrying on a moved branch; answers every job.
fn commit_batch(store: &Store, branch: &str, author: &str, batch: Vec<Job>) {
    let mut outcome = Err(Refusal::plain(
        http::StatusCode::SERVICE_UNAVAILABLE,
        "the branch kept moving; try again",
    ));
    for _ in 0..MAX_RETRIES {
        match attempt(store, branch, author, &batch) {
            Err(kith_store::Error::BranchMoved { .. }) => continue,
            Err(e) => {
                outcome = Err(internal(e));
                break;
            }
            Ok(results) => {
                outcome = Ok(results);
                break;
            }
        }
    }
    match outcome {
        Ok(results) => {
            for (job, r) in batch.into_iter().zip(results) {
                let _ = job.reply.send(r);
            }
        }
        Err(refusal) => {
            for job in batch {
                let _ = job.reply.send(Err(refusal.clone()));
            }
        }
    }
}

type Results = Vec<Result<Hash, Refusal>>;

fn attempt(
    store: &Store,
    branch: &str,
    author: &str,
    batch: &[Job],
) -> kith_store::Result<Results> {
    let mut tx = store.transaction(branch)?;
    let root = tx.base_tree();
    let mut overlay: HashMap<String, Option<Hash>> = HashMap::new();
    let mut accepted = Vec::new();
    let mut verdicts = Vec::new();
    for job in batch {
        let view = View {
            store,
            root,
            overlay: &overlay,
        };
        let verdict = (job.plan)(&view);
        if let Ok(changes) = &verdict {
            for change in changes {
                apply(store, &mut tx, &mut overlay, change)?;
            }
            accepted.push(job.summary.as_str());
        }
        verdicts.push(verdict.map(|_| ()));
    }
    let head = if accepted.is_empty() {
        tx.base()
    } else {
        tx.commit(author, &message(&accepted))?
            .or(store.head(branch)?)
    };
    let head = head.unwrap_or(Hash([0; 32]));
    Ok(verdicts.into_iter().map(|v| v.map(|_| head)).collect())
}

fn apply(
    store: &Store,
    tx: &mut kith_store::Transaction,
    overlay: &mut HashMap<String, Option<Hash>>,
    change: &Change,
) -> kith_store::Result<()> {
    match change {
        Change::Put(path, bytes) => {
            let hash = store.write_blob(bytes)?;
            tx.set(path, Some((EntryKind::File, hash)))?;
            overlay.insert(path.clone(), Some(hash));
        }
        Change::Remove(path) => {
            tx.remove(path)?;
            let prefix = format!("{path}/");
            overlay.retain(|k, _| !k.starts_with(&prefix));
            overlay.insert(path.clone(), None);
        }
    }
    Ok(())
}

/// The commit message of a batch.
fn message(summaries: &[&str]) -> String {
    match summaries {
        [one] => format!("dav: {one}"),
        many => {
            let mut m = format!("dav: {} changes", many.len());
            for s in many.iter().take(20) {
                m.push_str(&format!("\n{s}"));
            }
            m
        }
    }
}
