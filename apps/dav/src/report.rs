//! REPORTs on a collection: the scope they run in, and RFC 6578 `sync-collection`.
//!
//! A sync token names a commit: `https://kith.invalid/sync/<commit>`. Given a token, the
//! changes are the store's diff between the collection's folder at that commit and now,
//! so a token from before a change yields exactly the members changed or deleted since,
//! whichever process (a client, or sync from another replica) made them.

use std::sync::Arc;

use http::StatusCode;
use kith_store::{EntryKind, Hash, Store};

use crate::error::Result;
use crate::kind::{CollectionKind, Refusal, Reply};
use crate::multistatus::{self, PropStat, status_response};
use crate::props::{Props, Resource};
use crate::target::{Target, from_href};
use crate::writer::internal;
use crate::xml::{DAV, Element, Name};

/// The URI prefix of sync tokens.
pub const TOKEN_PREFIX: &str = "https://kith.invalid/sync/";

/// Everything a report on one collection reads, at one version of the store.
#[derive(Clone)]
pub struct Report {
    /// The store.
    pub store: Store,
    /// The commit read (the branch head when the request arrived).
    pub head: Option<Hash>,
    /// The authenticated user.
    pub user: String,
    /// The collection.
    pub collection: Target,
    /// The collection's folder.
    pub dir: Hash,
    /// Its kind.
    pub kind: Arc<dyn CollectionKind>,
    /// Every kind served.
    pub kinds: Arc<[Arc<dyn CollectionKind>]>,
}

impl Report {
    /// The collection's items: file names with the kind's extension, and their blobs.
    pub fn items(&self) -> Result<Vec<(String, Hash)>> {
        Ok(self
            .store
            .list(&self.dir, "/")?
            .into_iter()
            .filter(|e| e.kind == EntryKind::File && self.is_item_name(&e.name))
            .map(|e| (e.name, e.hash))
            .collect())
    }

    /// Whether a file name in the collection is an item.
    pub fn is_item_name(&self, name: &str) -> bool {
        is_item_name(self.kind.as_ref(), name)
    }

    /// The blob of item `name`, if it exists.
    pub fn item(&self, name: &str) -> Result<Option<Hash>> {
        if !self.is_item_name(name) {
            return Ok(None);
        }
        Ok(match self.store.find(&self.dir, name)? {
            Some((EntryKind::File, h)) => Some(h),
            _ => None,
        })
    }

    /// The item name an href in a request names, when it is in this collection.
    pub fn member(&self, href: &str) -> Option<String> {
        match (from_href(href), &self.collection) {
            (Target::Item(k, u, c, i), Target::Collection(k2, u2, c2))
                if (&k, &u, &c) == (k2, u2, c2) =>
            {
                Some(i)
            }
            _ => None,
        }
    }

    /// The href of item `name`.
    pub fn href(&self, name: &str) -> String {
        self.item_target(name).href()
    }

    fn item_target(&self, name: &str) -> Target {
        match &self.collection {
            Target::Collection(k, u, c) => {
                Target::Item(k.clone(), u.clone(), c.clone(), name.into())
            }
            other => other.clone(),
        }
    }

    /// The `<response>` of one item with the requested properties.
    pub fn response(&self, name: &str, hash: &Hash, props: &[Element]) -> Result<String> {
        let p = Props {
            store: &self.store,
            user: &self.user,
            kinds: &self.kinds,
            // Only collections have a sync-token.
            sync_token: "",
        };
        let target = self.item_target(name);
        let href = target.href();
        let res = Resource::Item(target, Arc::clone(&self.kind), *hash);
        let mut stat = PropStat::default();
        for prop in props {
            match p.get(&res, prop)? {
                Some(v) => stat.found.push((prop.name.clone(), v)),
                None => stat.other.push((prop.name.clone(), StatusCode::NOT_FOUND)),
            }
        }
        Ok(stat.response(&href))
    }

    /// The sync token of the version read.
    pub fn sync_token(&self) -> String {
        token(self.head)
    }

    /// A multistatus of `responses`, ending with the current sync token when `sync`.
    pub fn reply(
        &self,
        responses: impl Iterator<Item = String> + Send + 'static,
        sync: bool,
    ) -> Reply {
        let close = multistatus::close(sync.then(|| self.sync_token()).as_deref());
        Reply {
            chunks: Box::new(
                std::iter::once(multistatus::open())
                    .chain(responses)
                    .chain(std::iter::once(close)),
            ),
            content_type: None,
        }
    }
}

/// A `multiget` report (RFC 6352 §8.7 `addressbook-multiget`, RFC 4791 §7.9
/// `calendar-multiget`): the requested properties of each `href`, 404 for hrefs that
/// name no item of the collection.
pub fn multiget(report: &Report, body: &Element) -> Reply {
    let props = requested_props(body);
    let hrefs: Vec<String> = body
        .children_named(DAV, "href")
        .map(|h| h.text.trim().to_string())
        .collect();
    let r = report.clone();
    let responses = hrefs.into_iter().map(move |href| {
        let found = r.member(&href).and_then(|name| {
            let hash = r.item(&name).ok()??;
            r.response(&name, &hash, &props).ok()
        });
        found.unwrap_or_else(|| status_response(&href, StatusCode::NOT_FOUND))
    });
    report.reply(responses, false)
}

/// The properties a report's `DAV:prop` asks for.
pub fn requested_props(body: &Element) -> Vec<Element> {
    body.child(DAV, "prop")
        .map(|p| p.children.clone())
        .unwrap_or_default()
}

/// Whether `name` is an item of `kind` (its extension, not a dotfile).
pub fn is_item_name(kind: &dyn CollectionKind, name: &str) -> bool {
    !name.starts_with('.')
        && name
            .rsplit_once('.')
            .is_some_and(|(_, ext)| ext.eq_ignore_ascii_case(kind.extension()))
}

/// The sync token naming a commit.
pub fn token(head: Option<Hash>) -> String {
    format!(
        "{TOKEN_PREFIX}{}",
        head.map(|h| h.to_hex()).unwrap_or_default()
    )
}

/// Runs `sync-collection` (RFC 6578 §3.2).
pub fn sync_collection(report: &Report, body: &Element) -> std::result::Result<Reply, Refusal> {
    let props = requested_props(body);
    let given = body
        .child(DAV, "sync-token")
        .map(|t| t.text.trim().to_string())
        .unwrap_or_default();
    let changes = if given.is_empty() {
        let items = report
            .items()
            .map_err(|e| Refusal::plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        items.into_iter().map(|(n, h)| (n, Some(h))).collect()
    } else {
        changes_since(report, &given)?
    };
    let r = report.clone();
    let responses = changes
        .into_iter()
        .filter_map(move |(name, hash)| match hash {
            Some(h) => r.response(&name, &h, &props).ok(),
            None => Some(status_response(&r.href(&name), StatusCode::NOT_FOUND)),
        });
    Ok(report.reply(responses, true))
}

/// The members changed (`Some(blob)`) or deleted (`None`) since the commit a token names.
fn changes_since(
    report: &Report,
    given: &str,
) -> std::result::Result<Vec<(String, Option<Hash>)>, Refusal> {
    let invalid = || {
        Refusal::condition(
            StatusCode::FORBIDDEN,
            Name::new(DAV, "valid-sync-token"),
            "the sync token is not one this server gave out; sync again from scratch",
        )
    };
    let commit: Hash = given
        .strip_prefix(TOKEN_PREFIX)
        .and_then(|h| h.parse().ok())
        .ok_or_else(invalid)?;
    let store = &report.store;
    let tree = store.commit(&commit).map_err(|_| invalid())?.tree;
    let path = report.collection.store_path();
    let old = match store.find(&tree, &path).map_err(internal)? {
        Some((EntryKind::Dir, h)) => h,
        _ => store.empty_tree().map_err(internal)?,
    };
    let diff = store.diff(&old, &report.dir).map_err(internal)?;
    Ok(diff
        .into_iter()
        .filter(|c| !c.path.contains('/') && report.is_item_name(&c.path))
        .map(|c| (c.path, c.new))
        .collect())
}
