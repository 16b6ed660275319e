//! The memory backend: objects and refs in RAM, for tests and short-lived replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use super::{LockGuard, ObjectStore, RefStore, RetainReport};
use crate::error::Result;
use crate::hash::Hash;

/// Objects in a hash map.
#[derive(Default)]
pub struct MemoryObjects {
    objects: RwLock<HashMap<Hash, Arc<[u8]>>>,
    maintenance: Arc<Maintenance>,
}

impl MemoryObjects {
    /// An empty object store.
    pub fn new() -> MemoryObjects {
        MemoryObjects::default()
    }
}

impl ObjectStore for MemoryObjects {
    fn read(&self, hash: &Hash) -> Result<Option<Vec<u8>>> {
        Ok(self.objects.read().unwrap().get(hash).map(|b| b.to_vec()))
    }

    fn contains(&self, hash: &Hash) -> Result<bool> {
        Ok(self.objects.read().unwrap().contains_key(hash))
    }

    fn write(&self, hash: &Hash, canonical: &[u8]) -> Result<()> {
        self.objects
            .write()
            .unwrap()
            .entry(*hash)
            .or_insert_with(|| canonical.into());
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }

    fn for_each_hash(&self, f: &mut dyn FnMut(&Hash) -> Result<()>) -> Result<()> {
        let hashes: Vec<Hash> = self.objects.read().unwrap().keys().copied().collect();
        hashes.iter().try_for_each(f)
    }

    fn retain(&self, keep: &dyn Fn(&Hash) -> bool) -> Result<RetainReport> {
        let mut objects = self.objects.write().unwrap();
        let size = |m: &HashMap<Hash, Arc<[u8]>>| m.values().map(|b| b.len() as u64).sum();
        let before = objects.len() as u64;
        let bytes_before = size(&objects);
        objects.retain(|h, _| keep(h));
        Ok(RetainReport {
            kept: objects.len() as u64,
            dropped: before - objects.len() as u64,
            bytes_before,
            bytes_after: size(&objects),
        })
    }

    fn lock(&self, exclusive: bool) -> Result<LockGuard> {
        let lock = Arc::clone(&self.maintenance);
        Ok(LockGuard::new(MaintenanceHold::take(lock, exclusive)))
    }
}

/// The memory backend's maintenance lock: a count of shared holders, or one exclusive.
#[derive(Default)]
struct Maintenance {
    /// Shared holders, or `usize::MAX` while held exclusively.
    holders: Mutex<usize>,
    released: Condvar,
}

/// One hold on [`Maintenance`], released on drop.
struct MaintenanceHold {
    lock: Arc<Maintenance>,
    exclusive: bool,
}

impl MaintenanceHold {
    fn take(lock: Arc<Maintenance>, exclusive: bool) -> MaintenanceHold {
        let mut holders = lock.holders.lock().unwrap();
        while *holders == usize::MAX || (exclusive && *holders > 0) {
            holders = lock.released.wait(holders).unwrap();
        }
        *holders = if exclusive { usize::MAX } else { *holders + 1 };
        drop(holders);
        MaintenanceHold { lock, exclusive }
    }
}

impl Drop for MaintenanceHold {
    fn drop(&mut self) {
        let mut holders = self.lock.holders.lock().unwrap();
        *holders = if self.exclusive { 0 } else { *holders - 1 };
        self.lock.released.notify_all();
    }
}

/// A ref's current value and its earlier values, newest first.
type RefSlot = (Option<Hash>, Vec<Hash>);

/// Refs in a sorted map, with their histories.
#[derive(Default)]
pub struct MemoryRefs {
    refs: Mutex<BTreeMap<String, RefSlot>>,
}

impl MemoryRefs {
    /// No refs.
    pub fn new() -> MemoryRefs {
        MemoryRefs::default()
    }
}

impl RefStore for MemoryRefs {
    fn get(&self, name: &str) -> Result<Option<Hash>> {
        Ok(self.refs.lock().unwrap().get(name).and_then(|r| r.0))
    }

    fn compare_and_set(
        &self,
        name: &str,
        expected: Option<Hash>,
        new: Option<Hash>,
    ) -> Result<bool> {
        let mut refs = self.refs.lock().unwrap();
        let slot = refs.entry(name.to_string()).or_default();
        if slot.0 != expected {
            return Ok(false);
        }
        if let Some(old) = slot.0 {
            slot.1.insert(0, old);
        }
        slot.0 = new;
        Ok(true)
    }

    fn list(&self) -> Result<Vec<(String, Hash)>> {
        let refs = self.refs.lock().unwrap();
        Ok(refs
            .iter()
            .filter_map(|(n, (h, _))| h.map(|h| (n.clone(), h)))
            .collect())
    }

    fn history(&self, name: &str) -> Result<Vec<Hash>> {
        Ok(self
            .refs
            .lock()
            .unwrap()
            .get(name)
            .map(|r| r.1.clone())
            .unwrap_or_default())
    }
}
