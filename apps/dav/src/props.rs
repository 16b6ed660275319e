//! Properties of each resource: live ones computed from the store, writable ones kept as
//! vdir metadata files, and dead ones kept in the collection's `.dav-props` file.
//!
//! `.dav-props` holds one dead property a line: `{namespace}local`, a tab, then the
//! property's inner XML with `\` written `\\` and line breaks written `\n`. vdir tools
//! ignore dotfiles, so `kith export` of an address book is still a plain vdir.

use std::collections::BTreeMap;
use std::sync::Arc;

use kith_store::{EntryKind, Hash, Store};

use crate::error::Result;
use crate::kind::CollectionKind;
use crate::multistatus::href;
use crate::target::Target;
use crate::xml::{CALSERVER, DAV, Element, Name, escape};

/// The file holding a collection's dead properties.
pub const DEAD_PROPS: &str = ".dav-props";

/// A resource that exists, with what its properties are computed from.
#[derive(Clone)]
pub enum Resource {
    /// `/`, `/principals/`, or `/<prefix>/`.
    Folder(Target),
    /// The user's principal.
    Principal(String),
    /// The user's home of one kind.
    Home(Target, Arc<dyn CollectionKind>),
    /// A collection and its folder's tree.
    Collection(Target, Arc<dyn CollectionKind>, Hash),
    /// An item and its blob.
    Item(Target, Arc<dyn CollectionKind>, Hash),
}

/// What a property lookup needs besides the resource.
pub struct Props<'a> {
    /// The store.
    pub store: &'a Store,
    /// The authenticated user.
    pub user: &'a str,
    /// Every kind served (for the principal's home sets).
    pub kinds: &'a [Arc<dyn CollectionKind>],
    /// The current sync token (for collections).
    pub sync_token: &'a str,
}

impl Resource {
    /// The resource's target.
    pub fn target(&self) -> Target {
        match self {
            Resource::Folder(t) => t.clone(),
            Resource::Principal(u) => Target::Principal(u.clone()),
            Resource::Home(t, _) | Resource::Collection(t, _, _) | Resource::Item(t, _, _) => {
                t.clone()
            }
        }
    }
}

impl Props<'_> {
    /// The inner XML of property `prop` of `res`, or `None` when it has none.
    pub fn get(&self, res: &Resource, prop: &Element) -> Result<Option<String>> {
        if let Some(v) = self.common(res, &prop.name) {
            return Ok(Some(v));
        }
        match res {
            Resource::Folder(_) => Ok(None),
            Resource::Principal(u) => Ok(self.principal(u, &prop.name)),
            Resource::Home(t, _) => Ok(self.home(t, &prop.name)),
            Resource::Collection(_, kind, dir) => self.collection(kind, dir, &prop.name),
            Resource::Item(_, kind, hash) => self.item(kind, hash, prop),
        }
    }

    /// Every property name `res` has, for `allprop` and `propname`.
    pub fn names(&self, res: &Resource) -> Result<Vec<Name>> {
        let mut names = vec![
            Name::new(DAV, "resourcetype"),
            Name::new(DAV, "current-user-principal"),
            Name::new(DAV, "current-user-privilege-set"),
            Name::new(DAV, "supported-report-set"),
        ];
        let more: Vec<Name> = match res {
            Resource::Folder(_) => vec![],
            Resource::Principal(_) => {
                let mut v = vec![
                    Name::new(DAV, "displayname"),
                    Name::new(DAV, "principal-URL"),
                ];
                v.extend(self.kinds.iter().map(|k| k.home_set()));
                v
            }
            Resource::Home(..) => vec![Name::new(DAV, "owner")],
            Resource::Collection(_, kind, dir) => self.collection_names(kind, dir)?,
            Resource::Item(..) => vec![
                Name::new(DAV, "getetag"),
                Name::new(DAV, "getcontenttype"),
                Name::new(DAV, "getcontentlength"),
            ],
        };
        names.extend(more);
        Ok(names)
    }

    fn collection_names(&self, kind: &Arc<dyn CollectionKind>, dir: &Hash) -> Result<Vec<Name>> {
        let mut v = vec![
            Name::new(DAV, "owner"),
            Name::new(DAV, "sync-token"),
            Name::new(CALSERVER, "getctag"),
        ];
        for m in kind.metadata_files() {
            if self.store.find(dir, m.file)?.is_some() {
                v.push(m.property);
            }
        }
        v.extend(kind.collection_properties().into_iter().map(|(n, _)| n));
        for name in dead_props(self.store, dir)?.into_keys() {
            if !v.contains(&name) {
                v.push(name);
            }
        }
        Ok(v)
    }

    /// Properties every resource has.
    fn common(&self, res: &Resource, name: &Name) -> Option<String> {
        if name.ns != DAV {
            return None;
        }
        match name.local.as_str() {
            "current-user-principal" => Some(href(&Target::Principal(self.user.into()).href())),
            "principal-collection-set" => Some(href("/principals/")),
            "current-user-privilege-set" => Some(privileges()),
            "resourcetype" => Some(resource_type(res)),
            "supported-report-set" => Some(supported_reports(res)),
            _ => None,
        }
    }

    fn principal(&self, user: &str, name: &Name) -> Option<String> {
        if name.is(DAV, "displayname") {
            return Some(escape(user));
        }
        if name.is(DAV, "principal-URL") {
            return Some(href(&Target::Principal(user.into()).href()));
        }
        self.kinds
            .iter()
            .find(|k| k.home_set() == *name)
            .map(|k| href(&Target::Home(k.prefix().into(), user.into()).href()))
    }

    fn home(&self, target: &Target, name: &Name) -> Option<String> {
        let owner = target.owner()?;
        name.is(DAV, "owner")
            .then(|| href(&Target::Principal(owner.into()).href()))
    }

    fn collection(
        &self,
        kind: &Arc<dyn CollectionKind>,
        dir: &Hash,
        name: &Name,
    ) -> Result<Option<String>> {
        if name.is(DAV, "sync-token") {
            return Ok(Some(escape(self.sync_token)));
        }
        if name.is(CALSERVER, "getctag") {
            return Ok(Some(format!("\"{}\"", dir.to_hex())));
        }
        if name.is(DAV, "owner") {
            return Ok(Some(href(&Target::Principal(self.user.into()).href())));
        }
        if let Some(m) = kind
            .metadata_files()
            .into_iter()
            .find(|m| m.property == *name)
        {
            return Ok(self
                .store
                .get(dir, m.file)?
                .map(|b| escape(String::from_utf8_lossy(&b).trim_end())));
        }
        let dead = dead_props(self.store, dir)?.remove(name);
        if dead.is_some() {
            return Ok(dead);
        }
        Ok(kind
            .collection_properties()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v))
    }

    fn item(
        &self,
        kind: &Arc<dyn CollectionKind>,
        hash: &Hash,
        prop: &Element,
    ) -> Result<Option<String>> {
        let name = &prop.name;
        if name.is(DAV, "getetag") {
            return Ok(Some(escape(&etag(hash))));
        }
        if name.is(DAV, "getcontenttype") {
            return Ok(Some(kind.content_type().into()));
        }
        if name.is(DAV, "getcontentlength") {
            return Ok(Some(self.store.blob(hash)?.len().to_string()));
        }
        if kind.is_item_property(name) {
            let bytes = self.store.blob(hash)?;
            return Ok(kind.item_property(prop, &bytes));
        }
        Ok(None)
    }
}

/// The strong ETag of an item: its blob hash, quoted.
pub fn etag(hash: &Hash) -> String {
    format!("\"{}\"", hash.to_hex())
}

fn resource_type(res: &Resource) -> String {
    let c = "<d:collection/>";
    match res {
        Resource::Folder(_) | Resource::Home(..) => c.into(),
        Resource::Principal(_) => "<d:principal/>".into(),
        Resource::Collection(_, kind, _) => {
            let (open, close) = crate::multistatus::tags(&kind.resource_type());
            format!("{c}{open}{close}")
        }
        Resource::Item(..) => String::new(),
    }
}

fn supported_reports(res: &Resource) -> String {
    let Resource::Collection(_, kind, _) = res else {
        return String::new();
    };
    let mut names = vec![Name::new(DAV, "sync-collection")];
    names.extend(kind.reports());
    names
        .iter()
        .map(|n| {
            let (o, c) = crate::multistatus::tags(n);
            format!("<d:supported-report><d:report>{o}{c}</d:report></d:supported-report>")
        })
        .collect()
}

/// The owner's privileges: everything on their own data.
fn privileges() -> String {
    [
        "read",
        "write",
        "write-properties",
        "write-content",
        "bind",
        "unbind",
        "read-current-user-privilege-set",
    ]
    .iter()
    .map(|p| format!("<d:privilege><d:{p}/></d:privilege>"))
    .collect()
}

/// The dead properties of a collection folder.
pub fn dead_props(store: &Store, dir: &Hash) -> Result<BTreeMap<Name, String>> {
    let Some((EntryKind::File, h)) = store.find(dir, DEAD_PROPS)? else {
        return Ok(BTreeMap::new());
    };
    Ok(parse_dead(&String::from_utf8_lossy(&store.blob(&h)?)))
}

/// Parses the `.dav-props` format.
pub fn parse_dead(text: &str) -> BTreeMap<Name, String> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('\t')?;
            let (ns, local) = key.strip_prefix('{')?.split_once('}')?;
            Some((Name::new(ns, local), unescape_line(value)))
        })
        .collect()
}

/// Writes the `.dav-props` format.
pub fn render_dead(props: &BTreeMap<Name, String>) -> String {
    props
        .iter()
        .map(|(n, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            format!("{{{}}}{}\t{v}\n", n.ns, n.local)
        })
        .collect()
}

fn unescape_line(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(o) => out.push(o),
                None => {}
            },
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_properties_round_trip() {
        let mut m = BTreeMap::new();
        m.insert(Name::new("urn:x", "a"), "line\none \\ <b>x</b>".to_string());
        m.insert(Name::new("", "plain"), String::new());
        assert_eq!(parse_dead(&render_dead(&m)), m);
    }
}
