//! Keeping an image's replica in step with the sync VM's, so that the service VMs share
//! their data the way the user's devices do: through the sync service.
//!
//! With `--sync HOST:PORT` (which `kith up --unikernel` passes), a thread of the image's
//! own dials the sync service with the image's service certificate and runs kith-identity's
//! [`Peer::sync`] (fetch, merge with the service's merge functions, push by fast-forward)
//! at once, then whenever the service commits to `main`, and every [`PERIOD`] to pick up
//! what other replicas pushed. It keeps the link open between syncs, dials again after a
//! failure with a growing pause, and prints what each sync brought or sent.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use kith_identity::enroll::Site;
use kith_identity::link::Credentials;
use kith_identity::sync_client::{Peer, Pushed, Synced};
use kith_store::watch::RefEvent;
use kith_store::{Hash, MAIN, Mergers, Store};

/// How often the sync service is asked for what other replicas pushed.
pub const PERIOD: Duration = Duration::from_secs(5);
/// How long commits that come in a burst are let gather before they are sent.
const GATHER: Duration = Duration::from_millis(100);
/// The longest pause between dials to a sync service that does not answer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The remote's name for the sync service: its branches track as `remotes/sync/...`.
const REMOTE: &str = "sync";
/// The sync thread's stack. The kernel allocates a stack whole, and std's default of
/// 2 MiB would be an eighth of a small VM; a handshake, a fetch and a merge need far
/// less than this, which still leaves a wide margin (the kernel has no guard page).
const STACK: usize = 512 << 10;

/// Where and as whom an image syncs.
pub struct Replica {
    /// The image's name, for its console lines and merge commits (`NAME-image`).
    pub name: &'static str,
    /// The site of the store on the disk.
    pub site: Site,
    /// The service whose certificate, with its key from the disk, the image proves
    /// itself with (`dav` for contacts and calendar).
    pub service: &'static str,
    /// The merge functions of the files this service writes.
    pub mergers: Mergers,
}

/// A [`Replica`] ready to sync.
struct Syncing {
    name: &'static str,
    store: Store,
    credentials: Credentials,
    mergers: Mergers,
}

impl Replica {
    /// Starts syncing with the `--sync HOST:PORT` argument's service on a thread of its
    /// own. Without that argument, or without the service's key on the disk, the
    /// replica stays on its own and the console says why; the service serves either way.
    pub fn start(self) -> crate::Result<()> {
        let name = self.name;
        let Some((host, port)) = crate::sync_argument()? else {
            println!("{name}: no --sync HOST:PORT given: this replica does not sync");
            return Ok(());
        };
        let store = self.site.store.clone();
        let credentials = match crate::credentials(&self.site, self.service) {
            Ok(credentials) => credentials,
            Err(e) => {
                eprintln!("{name}: {e}; this replica does not sync");
                return Ok(());
            }
        };
        let events = store.watch();
        let syncing = Syncing {
            name,
            store,
            credentials,
            mergers: self.mergers,
        };
        std::thread::Builder::new()
            .name("replica-sync".into())
            .stack_size(STACK)
            .spawn(move || syncing.run(&host, port, &events))?;
        Ok(())
    }
}

impl Syncing {
    /// Dials, syncs until the link fails, and dials again, forever.
    fn run(&self, host: &str, port: u16, events: &Receiver<RefEvent>) {
        let mut backoff = Duration::from_secs(1);
        let mut last_error = String::new();
        loop {
            let error = match Peer::connect(host, port, &self.credentials) {
                Ok(mut peer) => {
                    backoff = Duration::from_secs(1);
                    self.serve(&mut peer, events)
                }
                Err(e) => e,
            };
            let error = format!("syncing with {host}:{port}: {error}");
            if error != last_error {
                eprintln!("{}: {error}; trying again", self.name);
                last_error = error;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Syncs over `peer` now, after each of the service's commits and every [`PERIOD`];
    /// returns the error that ends the link.
    fn serve(&self, peer: &mut Peer, events: &Receiver<RefEvent>) -> kith_identity::Error {
        loop {
            let synced = match self.sync_once(peer) {
                Ok(synced) => synced,
                Err(e) => return e,
            };
            self.report(&synced);
            let tracking = kith_store::sync::tracking_branch(REMOTE, MAIN);
            wait_for_commit(events, self.store.head(&tracking).ok().flatten());
        }
    }

    fn sync_once(&self, peer: &mut Peer) -> kith_identity::Result<Synced> {
        let author = format!("{}-image", self.name);
        peer.sync(&self.store, REMOTE, MAIN, &self.mergers, &author)
    }

    /// Prints what a sync brought and sent, when it did anything.
    fn report(&self, synced: &Synced) {
        let name = self.name;
        if !synced.changes.is_empty() {
            println!(
                "{name}: sync brought {} changed files",
                synced.changes.len()
            );
        }
        for path in &synced.conflicts {
            println!("{name}: sync left /{path} in conflict; both sides are kept");
        }
        match &synced.pushed {
            Pushed::UpToDate => {}
            Pushed::Moved { commit } => println!("{name}: sync sent main at {}", &commit[..12]),
            Pushed::Refused { reason } => eprintln!("{name}: the sync service refused: {reason}"),
        }
    }
}

/// Waits up to [`PERIOD`] for `main` to move away from `synced`, the head the sync
/// service holds (a commit of the service), then lets a burst of commits gather for
/// [`GATHER`].
fn wait_for_commit(events: &Receiver<RefEvent>, synced: Option<Hash>) {
    let deadline = Instant::now() + PERIOD;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if event.name == MAIN && event.new != synced => break,
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => return,
            Err(RecvTimeoutError::Disconnected) => return std::thread::sleep(left),
        }
    }
    std::thread::sleep(GATHER);
    while events.try_recv().is_ok() {}
}
