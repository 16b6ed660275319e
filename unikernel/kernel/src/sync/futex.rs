//! Futexes: wait while a 32-bit word holds an expected value, wake waiters.
//! std's Mutex, Condvar, RwLock, Once and thread parking sit on these.

use alloc::collections::{BTreeMap, VecDeque};
use core::sync::atomic::{AtomicU32, Ordering};

use super::Global;
use crate::sched::{self, Tid, Wake};

static WAITERS: Global<BTreeMap<usize, VecDeque<Tid>>> = Global::new(BTreeMap::new());

/// Why a futex wait returned without being woken.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The word did not hold the expected value.
    ValueChanged,
    /// The deadline passed.
    TimedOut,
}

/// Blocks while `word` holds `expected`, until woken or until `deadline`
/// (monotonic nanoseconds).
pub fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) -> Result<(), WaitError> {
    if word.load(Ordering::SeqCst) != expected {
        return Err(WaitError::ValueChanged);
    }
    let key = word.as_ptr() as usize;
    let me = sched::current();
    WAITERS.with(|w| w.entry(key).or_default().push_back(me));
    let wake = sched::block(deadline);
    // A wake for another reason (a stale network waiter entry) leaves us
    // queued; leave the queue so a later futex wake is not lost on us.
    WAITERS.with(|w| {
        if let Some(queue) = w.get_mut(&key) {
            queue.retain(|&t| t != me);
            if queue.is_empty() {
                w.remove(&key);
            }
        }
    });
    match wake {
        Wake::Signalled => Ok(()),
        Wake::TimedOut => Err(WaitError::TimedOut),
    }
}

/// Wakes up to `count` threads waiting on the word at `addr`; returns how many.
pub fn wake(addr: usize, count: usize) -> usize {
    let woken = WAITERS.with(|w| {
        let Some(queue) = w.get_mut(&addr) else {
            return VecDeque::new();
        };
        let n = count.min(queue.len());
        let woken: VecDeque<Tid> = queue.drain(..n).collect();
        if queue.is_empty() {
            w.remove(&addr);
        }
        woken
    });
    for &tid in &woken {
        sched::wake(tid);
    }
    woken.len()
}
