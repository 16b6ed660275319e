//! `kith log`: history, newest first.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kith_store::{Commit, Hash};
use serde::Serialize;

use crate::context::Context;

/// Show the history of --branch (or of PATH in it), newest first.
#[derive(Args, Debug)]
pub struct Log {
    /// Only commits that changed this file or folder
    pub path: Option<String>,
    /// At most N commits
    #[arg(short = 'n', long, value_name = "N")]
    pub max_count: Option<usize>,
}

/// One commit as `--json` prints it.
#[derive(Serialize)]
pub struct CommitJson {
    pub commit: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: String,
    pub time: String,
    pub message: String,
}

impl CommitJson {
    pub fn new(hash: &Hash, c: &Commit) -> CommitJson {
        CommitJson {
            commit: hash.to_hex(),
            tree: c.tree.to_hex(),
            parents: c.parents.iter().map(Hash::to_hex).collect(),
            author: c.author.clone(),
            time: crate::output::time(c.time),
            message: c.message.clone(),
        }
    }
}

impl Log {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let Some(head) = ctx.store.head(ctx.branch())? else {
            if ctx.global.json {
                crate::output::print_json(&Vec::<CommitJson>::new())?;
            }
            return Ok(ExitCode::SUCCESS);
        };
        let limit = self.max_count.unwrap_or(usize::MAX);
        let commits: Box<dyn Iterator<Item = kith_store::Result<(Hash, Commit)>>> = match &self.path
        {
            Some(p) => Box::new(ctx.store.log_path(head, p)),
            None => Box::new(ctx.store.log(head)),
        };
        let mut json = Vec::new();
        let mut out = std::io::stdout().lock();
        for item in commits.take(limit) {
            let (hash, commit) = item?;
            if ctx.global.json {
                json.push(CommitJson::new(&hash, &commit));
            } else {
                writeln!(
                    out,
                    "{} {} {} {}",
                    hash.short(),
                    crate::output::time(commit.time),
                    commit.author,
                    commit.message
                )?;
            }
        }
        if ctx.global.json {
            crate::output::print_json(&json)?;
        }
        Ok(ExitCode::SUCCESS)
    }
}
