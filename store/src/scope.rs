//! What part of the tree a replica holds: everything, or only some prefixes.
//!
//! A partial replica (a contacts service needs only `/contacts/`) keeps every commit, the
//! directory nodes on the way down to each prefix, and everything under the prefixes; of
//! anything else it knows only the hash its parent directory records. Because a directory
//! names its children by hash, the replica can still commit: changing `/contacts/x`
//! rewrites the nodes on that path and reuses its siblings' hashes unread. Sync fetches,
//! `fsck` checks and `gc` keeps only what the scope reaches. Each prefix brings its
//! conflict records along (`/.kith/conflicts/contacts` with `/contacts`), so a partial
//! replica sees and settles the conflicts of what it holds.
//!
//! A store's scope is fixed when it is created and kept in the file `scope` of its folder
//! (one prefix per line; no file means the whole tree).

use std::path::Path;

use crate::error::{Error, Result};
use crate::merge::CONFLICTS;
use crate::store::split_path;

/// The file in a store folder that records a partial replica's prefixes.
pub const SCOPE_FILE: &str = "scope";

/// The prefixes a replica holds, or the whole tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    /// Normalised prefixes (`/contacts`), sorted, none inside another; empty: everything.
    prefixes: Vec<String>,
}

impl Scope {
    /// The whole tree.
    pub fn full() -> Scope {
        Scope::default()
    }

    /// Only the trees under `prefixes` (a prefix of `/` means the whole tree).
    pub fn prefixes<S: AsRef<str>>(prefixes: impl IntoIterator<Item = S>) -> Result<Scope> {
        let mut out: Vec<String> = Vec::new();
        for prefix in prefixes {
            let names = split_path(prefix.as_ref())?;
            if names.is_empty() {
                return Ok(Scope::full());
            }
            let path = format!("/{}", names.join("/"));
            if !within(&path, &format!("/{CONFLICTS}")) {
                out.push(format!("/{CONFLICTS}{path}"));
            }
            out.push(path);
        }
        out.sort();
        out.dedup();
        let nested = |p: &String, all: &[String]| all.iter().any(|q| q != p && within(p, q));
        let kept = out.iter().filter(|p| !nested(p, &out)).cloned().collect();
        Ok(Scope { prefixes: kept })
    }

    /// Whether this is the whole tree.
    pub fn is_full(&self) -> bool {
        self.prefixes.is_empty()
    }

    /// The prefixes held (empty for the whole tree).
    pub fn list(&self) -> &[String] {
        &self.prefixes
    }

    /// Whether the file or directory at `path` is held with everything under it.
    pub fn holds(&self, path: &str) -> bool {
        self.is_full() || self.prefixes.iter().any(|p| within(path, p))
    }

    /// Whether the replica keeps the object at `path`: it is held, or it is a directory
    /// on the way down to a prefix.
    pub fn reaches(&self, path: &str) -> bool {
        path.is_empty()
            || path == "/"
            || self.holds(path)
            || self.prefixes.iter().any(|p| within(p, path))
    }

    /// Reads the scope of the store in `dir`.
    pub fn load(dir: &Path) -> Result<Scope> {
        let path = dir.join(SCOPE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                Scope::prefixes(text.lines().filter(|l| !l.trim().is_empty())).map_err(|e| {
                    Error::Format {
                        path: path.clone(),
                        detail: e.to_string(),
                    }
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Scope::full()),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Records the scope in the store folder `dir`, durably.
    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let text: String = self.prefixes.iter().map(|p| format!("{p}\n")).collect();
        crate::backend::pack::write_atomic(&dir.join(SCOPE_FILE), text.as_bytes())
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_full() {
            return f.write_str("/");
        }
        let shown: Vec<&str> = (self.prefixes.iter())
            .filter(|p| !within(p, &format!("/{CONFLICTS}")))
            .map(String::as_str)
            .collect();
        f.write_str(&shown.join(", "))
    }
}

/// Whether `path` is `prefix` or lies under it.
fn within(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_hold_their_trees_and_reach_their_ancestors() {
        let s = Scope::prefixes(["/contacts/", "/mail/me", "/contacts/me"]).unwrap();
        assert_eq!(
            s.list(),
            [
                "/.kith/conflicts/contacts",
                "/.kith/conflicts/mail/me",
                "/contacts",
                "/mail/me"
            ]
        );
        assert!(s.holds("/.kith/conflicts/contacts/me/a.vcf/ours"));
        assert!(!s.reaches("/.kith/conflicts/calendar"));
        assert!(s.holds("/contacts") && s.holds("/contacts/me/a.vcf"));
        assert!(!s.holds("/contactsx") && !s.holds("/mail") && !s.holds("/calendar"));
        assert!(s.reaches("") && s.reaches("/mail") && s.reaches("/mail/me/INBOX"));
        assert!(!s.reaches("/mail/you") && !s.reaches("/calendar") && !s.reaches("/mai"));
        assert!(Scope::prefixes(["/", "/x"]).unwrap().is_full());
        assert!(Scope::full().holds("/anything") && Scope::full().reaches("/a/b"));
    }
}
