//! Other replicas: where they are (`kith://` URLs, remotes in `kith.toml`), how this one
//! proves itself to them (kith-identity's links), and the three moves of sync: fetch
//! into remote-tracking branches, merge, and push by fast-forward.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use indicatif::HumanBytes;
use kith_identity::Site;
use kith_identity::link::{self, ClientStream, Credentials};
use kith_store::sync::{self, Endpoint, FetchClient, FetchReport, PushClient, RefUpdate, Traffic};
use kith_store::{Change, Hash, MergeOutcome, Store};
use serde::Serialize;

use crate::context::Context;

/// The sync service's port when a URL names none (the zone's `_kith-sync._tcp`).
pub const DEFAULT_PORT: u16 = 7447;
/// How long a link may stay silent before it is given up.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How often `sync` retries when the peer's branch moves between its fetch and its push.
const ATTEMPTS: usize = 5;

/// A sync service's address, from a `kith://host[:port]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Url {
    /// Parses `kith://host[:port]` (`kith://[::1]:7447` for IPv6).
    pub fn parse(text: &str) -> Result<Url> {
        let rest = text
            .strip_prefix("kith://")
            .ok_or_else(|| anyhow!("{text:?} is not a kith:// URL (kith://host:port)"))?
            .trim_end_matches('/');
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| anyhow!("{text:?}: unclosed [ in the address"))?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        if host.is_empty() {
            bail!("{text:?} names no host");
        }
        let port = match port {
            Some(p) => p
                .parse()
                .with_context(|| format!("{text:?}: bad port {p:?}"))?,
            None => DEFAULT_PORT,
        };
        Ok(Url {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "kith://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "kith://{}:{}", self.host, self.port)
        }
    }
}

/// This replica's credentials for links to other replicas.
pub fn credentials(ctx: &Context) -> Result<Credentials> {
    let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
    Credentials::of_device(&site, &ctx.author()).context(
        "this replica has no device identity: create one with `kith init --zone NAME`, or \
         clone with `kith clone --bundle FILE` using a bundle from `kith device add NAME`",
    )
}

/// Opens a mutual-TLS link to `url`.
pub fn dial(url: &Url, credentials: &Credentials) -> Result<ClientStream> {
    link::connect(&url.host, url.port, credentials.client_config()?, TIMEOUT)
        .with_context(|| format!("connecting to {url}"))
}

/// An open link to another replica's sync service: one connection, any number of
/// sessions (`kith sync` fetches and pushes over the same one).
pub struct Link {
    url: Url,
    stream: ClientStream,
}

impl Link {
    /// Connects to `url`.
    pub fn open(url: &Url, credentials: &Credentials) -> Result<Link> {
        Ok(Link {
            url: url.clone(),
            stream: dial(url, credentials)?,
        })
    }

    /// Runs one client session, with a progress bar while it moves data; `counts` says
    /// what the endpoint has done so far.
    fn run<E: Endpoint>(
        &mut self,
        endpoint: &mut E,
        what: &str,
        counts: impl Fn(&E) -> String,
    ) -> Result<Traffic> {
        let bar = crate::output::transfer(what);
        let mut observe = |t: &Traffic, e: &E| {
            bar.set_position(t.received);
            bar.set_message(format!(
                "{what} {} ({} sent)",
                counts(e),
                HumanBytes(t.sent)
            ));
        };
        let result = sync::run(endpoint, &mut self.stream, &mut observe);
        bar.finish_and_clear();
        result.map_err(|e| explain(e, &self.url))
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.stream.conn.send_close_notify();
        let _ = std::io::Write::flush(&mut self.stream);
    }
}

/// Adds what to do next to the errors a user can act on.
fn explain(e: sync::TransportError, url: &Url) -> anyhow::Error {
    let text = e.to_string();
    let hint = if text.contains("alert") || text.contains("certificate") {
        "; the peer refused this device's certificate, or its own is not from your root: \
         is this device enrolled (`kith device add`) and not revoked?"
    } else if text.contains("timed out") {
        "; the peer stopped answering: run the same command again, it resumes"
    } else if matches!(e, sync::TransportError::Closed { .. }) {
        "; run the same command again, it resumes where it stopped"
    } else {
        ""
    };
    anyhow!("syncing with {url}: {text}{hint}")
}

/// What a fetch brought and where the peer's branches are.
#[derive(Clone, Debug, Serialize)]
pub struct Fetched {
    /// The peer's branches.
    pub branches: Vec<(String, String)>,
    /// New commits, objects and their bytes.
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

/// Fetches every branch of the peer into `remotes/<remote>/<branch>`, dropping tracking
/// branches the peer no longer has.
pub fn fetch(store: &Store, remote: &str, link: &mut Link) -> Result<Fetched> {
    let started = Instant::now();
    let mut client = FetchClient::new(store.clone());
    let traffic = link.run(&mut client, "fetching", |c| {
        let r = c.report().cloned().unwrap_or_default();
        format!("{} objects, {} commits", r.objects, r.commits)
    })?;
    let peer = client.refs().to_vec();
    track(store, remote, &peer)?;
    let report = client.report().cloned().unwrap_or_default();
    Ok(fetched(&peer, &report, traffic, started))
}

fn fetched(peer: &[(String, Hash)], r: &FetchReport, t: Traffic, started: Instant) -> Fetched {
    Fetched {
        branches: peer.iter().map(|(n, h)| (n.clone(), h.to_hex())).collect(),
        commits: r.commits,
        objects: r.objects,
        bytes: r.bytes,
        received: t.received,
        rounds: r.rounds,
        seconds: started.elapsed().as_secs_f64(),
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

/// The outcome of pushing one branch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Pushed {
    /// The peer already had it.
    UpToDate,
    /// The peer's branch moved to this commit.
    Moved {
        /// The commit.
        commit: String,
    },
    /// The peer refused (or this side saw it would not be a fast-forward).
    Refused {
        /// Why.
        reason: String,
    },
}

/// Pushes `branch` to the peer if that is a fast-forward of the peer's branch.
pub fn push(store: &Store, remote: &str, branch: &str, link: &mut Link) -> Result<Pushed> {
    let Some(local) = store.head(branch)? else {
        bail!("branch {branch} has no commits to push");
    };
    let refusal = Arc::new(Mutex::new(None));
    let pick = pick_update(
        store.clone(),
        branch.to_string(),
        local,
        Arc::clone(&refusal),
    );
    let mut client = PushClient::new(store.clone(), pick);
    link.run(&mut client, "pushing", |_| String::new())?;
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

/// What one `kith sync` did.
#[derive(Clone, Debug, Serialize)]
pub struct Synced {
    /// The last fetch.
    pub fetched: Fetched,
    /// `up-to-date`, `fast-forward` or `merge`.
    pub merge: &'static str,
    /// Files the merge changed on this replica.
    pub changes: Vec<ChangeJson>,
    /// Paths left in conflict by this merge.
    pub conflicts: Vec<String>,
    /// The push.
    pub pushed: Pushed,
}

/// One changed file, as printed.
#[derive(Clone, Debug, Serialize)]
pub struct ChangeJson {
    /// `added`, `changed` or `removed`.
    pub change: &'static str,
    /// The path.
    pub path: String,
}

/// Fetches, merges the peer's `branch` into ours, and pushes the result, retrying when the
/// peer's branch moves in between.
pub fn sync_branch(
    ctx: &Context,
    remote: &str,
    url: &Url,
    credentials: &Credentials,
) -> Result<Synced> {
    let store = &ctx.store;
    let branch = ctx.branch();
    let mut changes = Vec::new();
    let mut conflicts = Vec::new();
    let mut merge = "up-to-date";
    let mut link = Link::open(url, credentials)?;
    for _ in 0..ATTEMPTS {
        let fetched = fetch(store, remote, &mut link)?;
        let before = store.head_tree(branch)?;
        if let Some(theirs) = store.head(&sync::tracking_branch(remote, branch))? {
            let message = format!("sync: merge {branch} of {remote}");
            let outcome = merge_with_retry(ctx, theirs, &message)?;
            match outcome {
                MergeOutcome::UpToDate => {}
                MergeOutcome::FastForward(_) => merge = "fast-forward",
                MergeOutcome::Merged { conflicts: c, .. } => {
                    merge = "merge";
                    conflicts.extend(c.into_iter().map(|c| format!("/{}", c.path)));
                }
            }
        }
        changes.extend(describe(&store.diff(&before, &store.head_tree(branch)?)?));
        let tracking = store.head(&sync::tracking_branch(remote, branch))?;
        let pushed = match store.head(branch)? {
            Some(ours) if Some(ours) != tracking => push(store, remote, branch, &mut link)?,
            _ => Pushed::UpToDate,
        };
        let moved_meanwhile = matches!(&pushed, Pushed::Refused { reason } if reason.contains("moved meanwhile") || reason.contains("lacks"));
        if !moved_meanwhile {
            return Ok(Synced {
                fetched,
                merge,
                changes,
                conflicts,
                pushed,
            });
        }
        tracing::info!("{remote}'s {branch} moved while syncing; syncing again");
    }
    bail!("{remote}'s {branch} kept moving during {ATTEMPTS} attempts; run `kith sync` again")
}

/// Merges `theirs` into the branch, again if a local writer (a service) moves it meanwhile.
fn merge_with_retry(ctx: &Context, theirs: Hash, message: &str) -> Result<MergeOutcome> {
    let mergers = crate::mergers::all();
    let mut attempts = 0;
    loop {
        match ctx
            .store
            .merge_into(ctx.branch(), theirs, &mergers, &ctx.author(), message)
        {
            Err(kith_store::Error::BranchMoved { .. }) if attempts < ATTEMPTS => attempts += 1,
            other => return Ok(other?),
        }
    }
}

fn describe(changes: &[Change]) -> Vec<ChangeJson> {
    changes
        .iter()
        .filter(|c| !c.path.starts_with(kith_store::merge::CONFLICTS))
        .map(|c| ChangeJson {
            change: match (c.old, c.new) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "changed",
            },
            path: format!("/{}", c.path),
        })
        .collect()
}
