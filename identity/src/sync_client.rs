//! The client half of sync, facing [`crate::sync_service`]: over one mutual-TLS [`link`]
//! to another replica, fetch its branches into tracking branches, merge its branch into
//! ours with the apps' merge functions, and push the result by fast-forward.
//!
//! `kith fetch`, `kith push` and `kith sync` run it with a progress bar; each service
//! unikernel runs it on a thread of its own to keep its replica in step with the sync
//! VM's. A [`Peer`] is one connection that carries any number of sessions, so a replica
//! that syncs often keeps it open.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kith_store::sync::{self, Endpoint, FetchClient, PushClient, RefUpdate, Traffic};
use kith_store::{Change, Hash, MergeOutcome, Mergers, Store};
use serde::Serialize;

use crate::link::{self, ClientStream, Credentials};
use crate::{Error, Result};

/// How long a link may stay silent before it is given up.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often a sync starts again when the peer's branch (or ours) moves in between.
const ATTEMPTS: usize = 5;

/// Sees the sessions of a [`Peer`] move data: a progress bar; `()` sees nothing.
pub trait Progress {
    /// The session `what` ("fetching", "pushing") has moved `traffic`; `detail` says
    /// what it brought so far.
    fn moved(&mut self, what: &str, traffic: &Traffic, detail: &str) {
        let _ = (what, traffic, detail);
    }
    /// The session ended.
    fn ended(&mut self) {}
}

impl Progress for () {}

/// An open link to another replica's sync service.
pub struct Peer<P: Progress = ()> {
    stream: Closing,
    progress: P,
}

/// A client stream that says goodbye (TLS close_notify) when dropped.
struct Closing(ClientStream);

impl Drop for Closing {
    fn drop(&mut self) {
        self.0.conn.send_close_notify();
        let _ = std::io::Write::flush(&mut self.0);
    }
}

impl Peer {
    /// Dials the sync service at `host:port`, proving `credentials`.
    pub fn connect(host: &str, port: u16, credentials: &Credentials) -> Result<Peer> {
        let stream = link::connect(host, port, credentials.client_config()?, TIMEOUT)?;
        Ok(Peer {
            stream: Closing(stream),
            progress: (),
        })
    }
}

impl<P: Progress> Peer<P> {
    /// The same link, its sessions seen by `progress`.
    pub fn with_progress<Q: Progress>(self, progress: Q) -> Peer<Q> {
        Peer {
            stream: self.stream,
            progress,
        }
    }

    /// Runs one session; `detail` says what the endpoint has done so far.
    fn run<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        what: &str,
        detail: impl Fn(&E) -> String,
    ) -> Result<Traffic> {
        let progress = &mut self.progress;
        let mut observe = |t: &Traffic, e: &E| progress.moved(what, t, &detail(e));
        let result = sync::run(endpoint, &mut self.stream.0, &mut observe);
        self.progress.ended();
        Ok(result?)
    }

    /// Fetches every branch of the peer into `remotes/<remote>/<branch>`, dropping
    /// tracking branches the peer no longer has.
    pub fn fetch(&mut self, store: &Store, remote: &str) -> Result<Fetched> {
        let started = Instant::now();
        let mut client = FetchClient::new(store.clone());
        let traffic = self.run(&mut client, "fetching", |c| {
            let r = c.report().cloned().unwrap_or_default();
            format!("{} objects, {} commits", r.objects, r.commits)
        })?;
        let peer = client.refs().to_vec();
        track(store, remote, &peer)?;
        let r = client.report().cloned().unwrap_or_default();
        Ok(Fetched {
            branches: peer.iter().map(|(n, h)| (n.clone(), h.to_hex())).collect(),
            commits: r.commits,
            objects: r.objects,
            bytes: r.bytes,
            received: traffic.received,
            rounds: r.rounds,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Pushes `branch` to the peer if that is a fast-forward of the peer's branch.
    pub fn push(&mut self, store: &Store, remote: &str, branch: &str) -> Result<Pushed> {
        let Some(local) = store.head(branch)? else {
            return Err(Error::EmptyBranch(branch.to_string()));
        };
        let refusal = Arc::new(Mutex::new(None));
        let pick = pick_update(
            store.clone(),
            branch.to_string(),
            local,
            Arc::clone(&refusal),
        );
        let mut client = PushClient::new(store.clone(), pick);
        self.run(&mut client, "pushing", |_| String::new())?;
        if let Some(reason) = refusal.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ok(Pushed::Refused { reason });
        }
        let results = client.results().unwrap_or_default();
        let Some((update, outcome)) = results.into_iter().next() else {
            return Ok(Pushed::UpToDate);
        };
        if let Some(reason) = outcome {
            return Ok(Pushed::Refused { reason });
        }
        track(store, remote, &[(branch.to_string(), update.new)])?;
        Ok(Pushed::Moved {
            commit: update.new.to_hex(),
        })
    }

    /// Fetches, merges the peer's `branch` into ours with `mergers` (a merge commit is
    /// `author`'s), and pushes the result; starts again when either side's branch moves
    /// in between.
    pub fn sync(
        &mut self,
        store: &Store,
        remote: &str,
        branch: &str,
        mergers: &Mergers,
        author: &str,
    ) -> Result<Synced> {
        let tracking = sync::tracking_branch(remote, branch);
        let mut synced = Synced::default();
        for _ in 0..ATTEMPTS {
            synced.fetched = self.fetch(store, remote)?;
            let before = store.head_tree(branch)?;
            if let Some(theirs) = store.head(&tracking)? {
                let message = format!("sync: merge {branch} of {remote}");
                match merge(store, branch, theirs, mergers, author, &message)? {
                    MergeOutcome::UpToDate => {}
                    MergeOutcome::FastForward(_) => {
                        synced.merge.get_or_insert(Merge::FastForward);
                    }
                    MergeOutcome::Merged { conflicts, .. } => {
                        synced.merge = Some(Merge::Merged);
                        synced
                            .conflicts
                            .extend(conflicts.into_iter().map(|c| c.path));
                    }
                }
            }
            synced
                .changes
                .extend(store.diff(&before, &store.head_tree(branch)?)?);
            synced.pushed = match store.head(branch)? {
                Some(ours) if Some(ours) != store.head(&tracking)? => {
                    self.push(store, remote, branch)?
                }
                _ => Pushed::UpToDate,
            };
            if !synced.pushed.moved_meanwhile() {
                return Ok(synced);
            }
            tracing::info!("{remote}'s {branch} moved while syncing; syncing again");
        }
        Err(Error::Unsettled {
            remote: remote.to_string(),
            branch: branch.to_string(),
        })
    }
}

/// Merges `theirs` into `branch`, again if a local writer (a service) moves it meanwhile.
fn merge(
    store: &Store,
    branch: &str,
    theirs: Hash,
    mergers: &Mergers,
    author: &str,
    message: &str,
) -> Result<MergeOutcome> {
    let mut attempts = 0;
    loop {
        match store.merge_into(branch, theirs, mergers, author, message) {
            Err(kith_store::Error::BranchMoved { .. }) if attempts < ATTEMPTS => attempts += 1,
            other => return Ok(other?),
        }
    }
}

/// Points the tracking branches of `remote` at the peer's heads.
fn track(store: &Store, remote: &str, peer: &[(String, Hash)]) -> Result<()> {
    let prefix = sync::tracking_branch(remote, "");
    for (name, head) in store.branches()? {
        if let Some(branch) = name.strip_prefix(&prefix)
            && !peer.iter().any(|(b, _)| b == branch)
        {
            store.set_branch(&name, Some(head), None)?;
        }
    }
    for (branch, head) in peer {
        let name = sync::tracking_branch(remote, branch);
        let current = store.head(&name)?;
        if current != Some(*head) {
            store.set_branch(&name, current, Some(*head))?;
        }
    }
    Ok(())
}

/// Chooses the push's one ref move: `branch` to `local`, only as a fast-forward.
fn pick_update(
    store: Store,
    branch: String,
    local: Hash,
    refusal: Arc<Mutex<Option<String>>>,
) -> impl FnMut(&[(String, Hash)]) -> Vec<RefUpdate> + Send + 'static {
    move |refs| {
        let theirs = refs.iter().find(|(n, _)| *n == branch).map(|(_, h)| *h);
        if theirs == Some(local) {
            return Vec::new();
        }
        if let Some(t) = theirs
            && !store.is_ancestor(t, local).unwrap_or(false)
        {
            *refusal.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!(
                "the peer's {branch} has commits this replica lacks; run `kith sync` to merge them first"
            ));
            return Vec::new();
        }
        vec![RefUpdate {
            name: branch.clone(),
            old: theirs,
            new: local,
        }]
    }
}

/// What a fetch brought and where the peer's branches are.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Fetched {
    /// The peer's branches and their heads (hex).
    pub branches: Vec<(String, String)>,
    /// New commits.
    pub commits: u64,
    /// New objects.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Bytes read from the link.
    pub received: u64,
    /// Negotiation rounds.
    pub rounds: u64,
    /// Seconds taken.
    pub seconds: f64,
}

/// The outcome of pushing one branch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Pushed {
    /// The peer already had it.
    #[default]
    UpToDate,
    /// The peer's branch moved to this commit.
    Moved {
        /// The commit (hex).
        commit: String,
    },
    /// The peer refused (or this side saw it would not be a fast-forward).
    Refused {
        /// Why.
        reason: String,
    },
}

impl Pushed {
    /// Refused because the peer's branch gained commits since the fetch.
    fn moved_meanwhile(&self) -> bool {
        matches!(self, Pushed::Refused { reason } if reason.contains("moved meanwhile") || reason.contains("lacks"))
    }
}

/// How the peer's branch came into ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Ours moved forward to theirs.
    FastForward,
    /// A merge commit joined the two.
    Merged,
}

/// What one [`Peer::sync`] did.
#[derive(Clone, Debug, Default)]
pub struct Synced {
    /// The last fetch.
    pub fetched: Fetched,
    /// How the peer's branch came in; `None`: ours had it already.
    pub merge: Option<Merge>,
    /// What the merge changed on this replica.
    pub changes: Vec<Change>,
    /// Paths left in conflict by the merge.
    pub conflicts: Vec<String>,
    /// The push.
    pub pushed: Pushed,
}
