//! `kith merge`, `kith conflicts` and `kith resolve`: three-way merge and its conflicts.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kith_store::{Conflict, Hash, MergeOutcome};

use crate::context::Context;

/// Merge BRANCH (or a commit) into --branch: fast-forward when possible, else a merge
/// commit. vCards, iCalendar events and mail flags merge property by property; what cannot
/// merge is still committed, with both sides kept, and listed by `kith conflicts`.
#[derive(Args, Debug)]
pub struct Merge {
    /// The branch or commit to merge in
    #[arg(value_name = "BRANCH")]
    pub source: String,
    /// The commit message [default: "merge BRANCH into --branch"]
    #[arg(short, long)]
    pub message: Option<String>,
}

impl Merge {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let theirs = ctx.store.resolve(&self.source)?;
        let message = crate::cmd::message(&self.message, || {
            format!("merge {} into {}", self.source, ctx.branch())
        });
        let outcome = ctx.store.merge_into(
            ctx.branch(),
            theirs,
            &crate::mergers::all(),
            &ctx.author(),
            &message,
        )?;
        let (kind, commit, conflicts) = match outcome {
            MergeOutcome::UpToDate => ("up-to-date", None, vec![]),
            MergeOutcome::FastForward(h) => ("fast-forward", Some(h), vec![]),
            MergeOutcome::Merged { commit, conflicts } => ("merge", Some(commit), conflicts),
        };
        if ctx.global.json {
            crate::output::print_json(&serde_json::json!({
                "outcome": kind,
                "commit": commit.map(|h| h.to_hex()),
                "conflicts": conflicts.iter().map(conflict_json).collect::<Vec<_>>(),
            }))?;
        } else {
            match (kind, commit) {
                ("up-to-date", _) => println!("already up to date"),
                (_, Some(h)) => println!("{kind}: {} is now at {}", ctx.branch(), h.short()),
                _ => {}
            }
        }
        if conflicts.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "kith: {} paths conflict; both sides are kept. Run `kith conflicts` to list them and `kith resolve PATH [FILE]` to settle each",
            conflicts.len()
        );
        Ok(ExitCode::from(1))
    }
}

/// List the conflicts recorded on --branch: each path, the sides that have it, and why.
#[derive(Args, Debug)]
pub struct Conflicts {}

impl Conflicts {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let tree = ctx.store.head_tree(ctx.branch())?;
        let conflicts = ctx.store.conflicts(&tree)?;
        if ctx.global.json {
            crate::output::print_json(&conflicts.iter().map(conflict_json).collect::<Vec<_>>())?;
        } else {
            for c in &conflicts {
                println!("/{}: {}", c.path, c.why);
            }
            if !conflicts.is_empty() {
                println!(
                    "each side is kept under /{}/<path>/ (base, ours, theirs); settle with `kith resolve PATH [FILE]`",
                    kith_store::merge::CONFLICTS
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Settle a conflict: PATH becomes FILE's bytes (or stdin with `-`; with no FILE, the
/// version it holds now, which is ours), and its record is removed, as one commit.
#[derive(Args, Debug)]
pub struct Resolve {
    /// The conflicted path, as `kith conflicts` prints it
    pub path: String,
    /// The settled version: a file, or `-` for stdin [default: keep the current version]
    pub file: Option<PathBuf>,
    /// Settle by deleting the path instead
    #[arg(long, conflicts_with = "file")]
    pub delete: bool,
    /// The commit message [default: "resolve PATH"]
    #[arg(short, long)]
    pub message: Option<String>,
}

impl Resolve {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let mut tx = ctx.store.transaction(ctx.branch())?;
        let bytes = match (&self.file, self.delete) {
            (_, true) => None,
            (Some(f), _) if f.as_os_str() == "-" => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("reading stdin")?;
                Some(buf)
            }
            (Some(f), _) => {
                Some(std::fs::read(f).with_context(|| format!("reading {}", f.display()))?)
            }
            (None, _) => match ctx.store.get(&tx.base_tree(), &self.path)? {
                Some(current) => Some(current),
                None => bail!(
                    "{} holds no version now; give the settled FILE, or --delete",
                    self.path
                ),
            },
        };
        tx.resolve(&self.path, bytes.as_deref())?;
        let message = crate::cmd::message(&self.message, || format!("resolve {}", self.path));
        let commit = tx.commit(&ctx.author(), &message)?;
        println!(
            "resolved {}{}",
            self.path,
            commit
                .map(|h| format!(" in {}", h.short()))
                .unwrap_or_default()
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn conflict_json(c: &Conflict) -> serde_json::Value {
    let hex = |h: Option<Hash>| h.map(|h| h.to_hex());
    serde_json::json!({ "path": format!("/{}", c.path), "why": c.why, "base": hex(c.base), "ours": hex(c.ours), "theirs": hex(c.theirs) })
}
