//! `kith diff`: the files that differ between two commits.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

use crate::context::Context;

/// List the files that differ: with no REV, what the head commit of --branch changed; with
/// one, from REV to the head; with two, from the first to the second. Lines read
/// `A path` (added), `M path` (modified) or `D path` (deleted).
#[derive(Args, Debug)]
pub struct Diff {
    /// Commits or branches to compare
    #[arg(num_args = 0..=2, value_name = "REV")]
    pub revs: Vec<String>,
}

#[derive(Serialize)]
struct ChangeJson {
    path: String,
    status: &'static str,
    old: Option<String>,
    new: Option<String>,
}

impl Diff {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (old, new) = self.trees(ctx)?;
        let changes = ctx.store.diff(&old, &new)?;
        let rows: Vec<ChangeJson> = changes
            .into_iter()
            .map(|c| ChangeJson {
                status: match (&c.old, &c.new) {
                    (None, _) => "A",
                    (_, None) => "D",
                    _ => "M",
                },
                path: format!("/{}", c.path),
                old: c.old.map(|h| h.to_hex()),
                new: c.new.map(|h| h.to_hex()),
            })
            .collect();
        if ctx.global.json {
            crate::output::print_json(&rows)?;
        } else {
            let mut out = std::io::stdout().lock();
            for r in &rows {
                writeln!(out, "{} {}", r.status, r.path)?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    /// The two root trees to compare.
    fn trees(&self, ctx: &Context) -> Result<(kith_store::Hash, kith_store::Hash)> {
        let store = &ctx.store;
        let tree_of = |rev: &str| -> Result<kith_store::Hash> {
            Ok(store.commit(&store.resolve(rev)?)?.tree)
        };
        Ok(match self.revs.as_slice() {
            [] => {
                let Some(head) = store.head(ctx.branch())? else {
                    bail!("branch {} has no commits yet", ctx.branch())
                };
                let commit = store.commit(&head)?;
                let parent = match commit.parents.first() {
                    Some(p) => store.commit(p)?.tree,
                    None => store.empty_tree()?,
                };
                (parent, commit.tree)
            }
            [a] => (tree_of(a)?, store.head_tree(ctx.branch())?),
            [a, b, ..] => (tree_of(a)?, tree_of(b)?),
        })
    }
}
