//! Watching branches move, whichever process moved them.
//!
//! One thread per store polls the ref store (every [`POLL`], or at once when this process
//! moves a branch) and sends a [`RefEvent`] for every change to every subscriber. Where
//! nothing else can move the refs (a disk, which one process owns), it only waits for
//! this process's moves, so an idle unikernel is not woken to poll. Services use it for
//! IMAP IDLE, DAV sync tokens and DNS answers.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::backend::RefStore;
use crate::hash::Hash;

/// How often other processes' ref moves are looked for.
pub const POLL: Duration = Duration::from_millis(50);
/// The poller's stack: it only lists refs (std's default is 2 MiB, which a unikernel
/// allocates whole).
const STACK: usize = 256 << 10;

/// A ref moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefEvent {
    /// The ref (branch) name.
    pub name: String,
    /// Where it pointed before (`None`: it did not exist).
    pub old: Option<Hash>,
    /// Where it points now (`None`: deleted).
    pub new: Option<Hash>,
}

/// The poller and its subscribers.
pub(crate) struct Watcher {
    refs: Arc<dyn RefStore>,
    state: Arc<(Mutex<WatchState>, Condvar)>,
}

#[derive(Default)]
struct WatchState {
    subscribers: Vec<Sender<RefEvent>>,
    kicked: bool,
    running: bool,
}

impl Watcher {
    pub(crate) fn new(refs: Arc<dyn RefStore>) -> Watcher {
        Watcher {
            refs,
            state: Arc::default(),
        }
    }

    /// Wakes the poller at once (this process just moved a ref).
    pub(crate) fn kick(&self) {
        let (lock, cond) = &*self.state;
        let mut state = lock.lock().unwrap();
        if state.running {
            state.kicked = true;
            cond.notify_all();
        }
    }

    /// A new subscriber; starts the poller on first use.
    pub(crate) fn subscribe(&self) -> Receiver<RefEvent> {
        let (tx, rx) = channel();
        let (lock, _) = &*self.state;
        let mut state = lock.lock().unwrap();
        state.subscribers.push(tx);
        if !state.running {
            state.running = true;
            let refs = Arc::clone(&self.refs);
            let shared = Arc::clone(&self.state);
            let known = snapshot(&*refs);
            std::thread::Builder::new()
                .name("kith-store-watch".into())
                .stack_size(STACK)
                .spawn(move || poll(refs, shared, known))
                .expect("spawning the watch thread");
        }
        rx
    }
}

fn snapshot(refs: &dyn RefStore) -> BTreeMap<String, Hash> {
    match refs.list() {
        Ok(list) => list.into_iter().collect(),
        Err(e) => {
            tracing::warn!("watch: listing refs failed: {e}");
            BTreeMap::new()
        }
    }
}

/// The poll loop; ends when every subscriber has gone.
fn poll(
    refs: Arc<dyn RefStore>,
    shared: Arc<(Mutex<WatchState>, Condvar)>,
    mut known: BTreeMap<String, Hash>,
) {
    let (lock, cond) = &*shared;
    let others_move_refs = refs.shared();
    loop {
        {
            let state = lock.lock().unwrap();
            let mut state = if others_move_refs {
                cond.wait_timeout_while(state, POLL, |s| !s.kicked)
                    .unwrap()
                    .0
            } else {
                cond.wait_while(state, |s| !s.kicked).unwrap()
            };
            state.kicked = false;
        }
        let now = snapshot(&*refs);
        let events = changes(&known, &now);
        known = now;
        let mut state = lock.lock().unwrap();
        for event in events {
            state.subscribers.retain(|s| s.send(event.clone()).is_ok());
        }
        if state.subscribers.is_empty() {
            state.running = false;
            return;
        }
    }
}

fn changes(before: &BTreeMap<String, Hash>, after: &BTreeMap<String, Hash>) -> Vec<RefEvent> {
    let mut out = Vec::new();
    for (name, new) in after {
        if before.get(name) != Some(new) {
            out.push(RefEvent {
                name: name.clone(),
                old: before.get(name).copied(),
                new: Some(*new),
            });
        }
    }
    for (name, old) in before {
        if !after.contains_key(name) {
            out.push(RefEvent {
                name: name.clone(),
                old: Some(*old),
                new: None,
            });
        }
    }
    out
}
