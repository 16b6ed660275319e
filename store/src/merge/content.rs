//! Content merge functions: how the bytes of one file merge when both sides changed it.
//!
//! This is Irmin's `Contents.merge`: a three-way merge over optional values (absent means
//! the file does not exist on that side) that either produces a value or gives up with a
//! conflict. Apps implement [`ContentMerge`] for their formats (vCard in kith-contacts,
//! iCalendar in kith-calendar, mail flags in kith-mail) and register it in [`Mergers`] for
//! the paths they own. The store calls a merge function only when the three versions
//! really differ: when one side left a file as it was in the base, the other side's
//! version wins without asking.

use std::sync::Arc;

/// What a content merge decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merged {
    /// The merged bytes, or `None`: the file is deleted.
    Clean(Option<Vec<u8>>),
    /// The versions cannot be merged; the reason, for people.
    Conflict(String),
}

impl Merged {
    /// The merge when one side (or both) did nothing new: the other side's version.
    /// `None` when both changed the file differently and a real merge is needed.
    pub fn trivial(
        base: Option<&[u8]>,
        ours: Option<&[u8]>,
        theirs: Option<&[u8]>,
    ) -> Option<Merged> {
        let keep = |side: Option<&[u8]>| Some(Merged::Clean(side.map(<[u8]>::to_vec)));
        if base == ours {
            keep(theirs)
        } else if base == theirs || ours == theirs {
            keep(ours)
        } else {
            None
        }
    }
}

/// A three-way merge of one file's bytes.
///
/// Implementations must never panic, whatever the bytes (they come from other devices),
/// must keep everything they do not understand, and must return `Clean(ours)` exactly when
/// theirs adds nothing.
pub trait ContentMerge: Send + Sync {
    /// Merges `ours` and `theirs`, both derived from `base`; each `None` when the file is absent.
    fn merge(&self, base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged;
}

/// The fallback merge: identical versions merge, anything else is a conflict.
pub struct Identical;

impl ContentMerge for Identical {
    fn merge(&self, _base: Option<&[u8]>, ours: Option<&[u8]>, theirs: Option<&[u8]>) -> Merged {
        if ours == theirs {
            Merged::Clean(ours.map(<[u8]>::to_vec))
        } else {
            Merged::Conflict("both sides changed the file differently".into())
        }
    }
}

/// Which files a merge function is for.
#[derive(Clone, Debug)]
pub enum Rule {
    /// Paths under this prefix (e.g. `/contacts/`).
    Prefix(String),
    /// File names with this ending (e.g. `.vcf`).
    Suffix(String),
}

impl Rule {
    fn matches(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        match self {
            Rule::Prefix(p) => path.starts_with(p.trim_start_matches('/')),
            Rule::Suffix(s) => path.ends_with(s.as_str()),
        }
    }
}

/// The registered merge functions; the first rule that matches a path wins, and
/// [`Identical`] merges everything else.
#[derive(Clone, Default)]
pub struct Mergers {
    rules: Vec<(Rule, Arc<dyn ContentMerge>)>,
}

impl Mergers {
    /// No merge functions: every differing change conflicts.
    pub fn new() -> Mergers {
        Mergers::default()
    }

    /// Adds a merge function for the paths `rule` matches.
    pub fn register(&mut self, rule: Rule, merge: Arc<dyn ContentMerge>) -> &mut Mergers {
        self.rules.push((rule, merge));
        self
    }

    /// The merge function for a path.
    pub fn for_path(&self, path: &str) -> &dyn ContentMerge {
        self.rules
            .iter()
            .find(|(rule, _)| rule.matches(path))
            .map_or(&Identical as &dyn ContentMerge, |(_, m)| m.as_ref())
    }
}
