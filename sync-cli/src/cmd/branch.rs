//! `kith branch`: list, create and delete branches.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Args;

use crate::context::Context;

/// List branches (the current one marked `*`); with NAME, create it at FROM (default: the
/// head of --branch); with -d, delete it.
#[derive(Args, Debug)]
pub struct Branch {
    /// The branch to create or delete
    pub name: Option<String>,
    /// Where to start it: a branch or commit [default: --branch]
    pub from: Option<String>,
    /// Delete NAME (its commits stay until `kith gc`)
    #[arg(short, long, requires = "name")]
    pub delete: bool,
}

impl Branch {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match (&self.name, self.delete) {
            (Some(name), true) => {
                if name == ctx.branch() {
                    bail!("cannot delete {name}: it is the current branch; pass --branch OTHER");
                }
                ctx.store.delete_branch(name)?;
                println!("deleted branch {name}");
            }
            (Some(name), false) => {
                let from = self.from.as_deref().unwrap_or(ctx.branch());
                let Ok(start) = ctx.store.resolve(from) else {
                    bail!(
                        "{from} is neither a branch with commits nor a commit; commit something first"
                    );
                };
                if ctx.store.head(name)?.is_some() {
                    bail!(
                        "branch {name} already exists; delete it first with `kith branch -d {name}`"
                    );
                }
                ctx.store.create_branch(name, start)?;
                println!("created branch {name} at {}", start.short());
            }
            (None, _) => self.list(ctx)?,
        }
        Ok(ExitCode::SUCCESS)
    }

    fn list(&self, ctx: &Context) -> Result<()> {
        let branches = ctx.store.branches()?;
        if ctx.global.json {
            let rows: Vec<_> = branches
                .iter()
                .map(|(n, h)| serde_json::json!({ "name": n, "commit": h.to_hex(), "current": n == ctx.branch() }))
                .collect();
            return crate::output::print_json(&rows);
        }
        let mut out = std::io::stdout().lock();
        for (name, head) in branches {
            let mark = if name == ctx.branch() { '*' } else { ' ' };
            writeln!(out, "{mark} {name} {}", head.short())?;
        }
        Ok(())
    }
}
