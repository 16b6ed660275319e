//! Which item holds each UID, per collection, kept up to date by diffing the folder.
//!
//! CardDAV and CalDAV refuse a second item with a UID already in the collection
//! (`no-uid-conflict`). Parsing every item on every PUT would cost seconds on a large
//! address book, so the index of each collection is remembered with the folder hash it
//! describes and brought forward with the store's diff when the folder changes.

use std::collections::HashMap;
use std::sync::Mutex;

use kith_store::{Hash, Store};

use crate::error::Result;
use crate::kind::CollectionKind;
use crate::report::is_item_name;

/// UID to item name, for one folder version.
#[derive(Clone, Default)]
struct Index {
    dir: Option<Hash>,
    by_uid: HashMap<String, String>,
    by_name: HashMap<String, String>,
}

/// The UID indexes of every collection seen.
#[derive(Default)]
pub struct Uids {
    indexes: Mutex<HashMap<String, Index>>,
}

impl Uids {
    /// The item in the collection folder `dir` (at store path `path`) that holds `uid`.
    pub fn holder(
        &self,
        store: &Store,
        kind: &dyn CollectionKind,
        path: &str,
        dir: &Hash,
        uid: &str,
    ) -> Result<Option<String>> {
        let mut indexes = self.indexes.lock().unwrap();
        let index = indexes.entry(path.to_string()).or_default();
        if index.dir != Some(*dir) {
            let old = match index.dir {
                Some(h) => h,
                None => store.empty_tree()?,
            };
            for change in store.diff(&old, dir)? {
                if change.path.contains('/') || !is_item_name(kind, &change.path) {
                    continue;
                }
                if let Some(uid) = index.by_name.remove(&change.path) {
                    index.by_uid.remove(&uid);
                }
                if let Some(h) = change.new
                    && let Ok(uid) = kind.validate(&store.blob(&h)?)
                {
                    index.by_uid.insert(uid.clone(), change.path.clone());
                    index.by_name.insert(change.path, uid);
                }
            }
            index.dir = Some(*dir);
        }
        Ok(index.by_uid.get(uid).cloned())
    }
}
