//! Other replicas: where they are (`kith://` URLs, remotes in `kith.toml`), how this one
//! proves itself to them (kith-identity's links), and the three moves of sync (fetch
//! into remote-tracking branches, merge, push by fast-forward: kith-identity's
//! [`sync_client`](kith_identity::sync_client)) with a progress bar and hints.

use anyhow::{Context as _, Result, anyhow, bail};
use indicatif::{HumanBytes, ProgressBar};
use kith_identity::Site;
use kith_identity::link::Credentials;
pub use kith_identity::sync_client::{Fetched, Pushed};
use kith_identity::sync_client::{Merge, Peer, Progress};
use kith_store::sync::{Traffic, TransportError};
use kith_store::{Change, Store};
use serde::Serialize;

use crate::context::Context;

/// The sync service's port when a URL names none (the zone's `_kith-sync._tcp`).
pub const DEFAULT_PORT: u16 = 7447;

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

/// An open link to another replica's sync service, showing a progress bar while a
/// session moves data: one connection, any number of sessions (`kith sync` fetches and
/// pushes over the same one).
pub struct Link {
    url: Url,
    peer: Peer<Bar>,
}

/// The progress bar of the session under way.
#[derive(Default)]
struct Bar(Option<ProgressBar>);

impl Progress for Bar {
    fn moved(&mut self, what: &str, traffic: &Traffic, detail: &str) {
        let bar = self.0.get_or_insert_with(|| crate::output::transfer(what));
        bar.set_position(traffic.received);
        bar.set_message(format!(
            "{what} {detail} ({} sent)",
            HumanBytes(traffic.sent)
        ));
    }

    fn ended(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

impl Link {
    /// Connects to `url`.
    pub fn open(url: &Url, credentials: &Credentials) -> Result<Link> {
        let peer = Peer::connect(&url.host, url.port, credentials)
            .with_context(|| format!("connecting to {url}"))?;
        Ok(Link {
            url: url.clone(),
            peer: peer.with_progress(Bar::default()),
        })
    }

    /// Fetches every branch of the peer into `remotes/<remote>/<branch>`.
    pub fn fetch(&mut self, store: &Store, remote: &str) -> Result<Fetched> {
        self.peer
            .fetch(store, remote)
            .map_err(|e| explain(e, &self.url))
    }

    /// Pushes `branch` to the peer if that is a fast-forward of the peer's branch.
    pub fn push(&mut self, store: &Store, remote: &str, branch: &str) -> Result<Pushed> {
        self.peer
            .push(store, remote, branch)
            .map_err(|e| explain(e, &self.url))
    }
}

/// Adds what to do next to the errors a user can act on.
fn explain(e: kith_identity::Error, url: &Url) -> anyhow::Error {
    let text = e.to_string();
    let hint = if text.contains("alert") || text.contains("certificate") {
        "; the peer refused this device's certificate, or its own is not from your root: \
         is this device enrolled (`kith device add`) and not revoked?"
    } else if text.contains("timed out") {
        "; the peer stopped answering: run the same command again, it resumes"
    } else if matches!(e, kith_identity::Error::Sync(TransportError::Closed { .. })) {
        "; run the same command again, it resumes where it stopped"
    } else {
        ""
    };
    anyhow!("syncing with {url}: {text}{hint}")
}

/// What one `kith sync` did, as printed.
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

/// Fetches, merges the peer's branch into ours with every app's merge functions, and
/// pushes the result, retrying when the peer's branch moves in between.
pub fn sync_branch(
    ctx: &Context,
    remote: &str,
    url: &Url,
    credentials: &Credentials,
) -> Result<Synced> {
    let mut link = Link::open(url, credentials)?;
    let synced = link
        .peer
        .sync(
            &ctx.store,
            remote,
            ctx.branch(),
            &crate::mergers::all(),
            &ctx.author(),
        )
        .map_err(|e| explain(e, url))?;
    Ok(Synced {
        fetched: synced.fetched,
        merge: match synced.merge {
            None => "up-to-date",
            Some(Merge::FastForward) => "fast-forward",
            Some(Merge::Merged) => "merge",
        },
        changes: describe(&synced.changes),
        conflicts: synced.conflicts.iter().map(|p| format!("/{p}")).collect(),
        pushed: synced.pushed,
    })
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
