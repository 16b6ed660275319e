//! `kith put`, `get`, `rm` and `ls`: one file or folder at a time.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kith_store::EntryKind;

use crate::context::Context;

/// Write one file into the store as a commit, from FILE or from stdin.
#[derive(Args, Debug)]
pub struct Put {
    /// Where in the store, e.g. /contacts/me/default/alice.vcf
    pub path: String,
    /// The file to read, or `-` for stdin [default: stdin]
    pub file: Option<PathBuf>,
    /// The commit message [default: "put PATH"]
    #[arg(short, long)]
    pub message: Option<String>,
}

impl Put {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let bytes = match self.file.as_ref().filter(|f| f.as_os_str() != "-") {
            Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
            None => {
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .context("reading stdin")?;
                buf
            }
        };
        let mut tx = ctx.store.transaction(ctx.branch())?;
        tx.put(&self.path, &bytes)?;
        let message = crate::cmd::message(&self.message, || format!("put {}", self.path));
        print_commit(ctx, tx.commit(&ctx.author(), &message)?)
    }
}

/// Print one file's bytes to stdout, exactly as stored.
#[derive(Args, Debug)]
pub struct Get {
    /// The file, e.g. /contacts/me/default/alice.vcf
    pub path: String,
    /// Read it as of this commit or branch [default: --branch]
    #[arg(long, value_name = "REV")]
    pub at: Option<String>,
}

impl Get {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let root = root_at(ctx, self.at.as_deref())?;
        match ctx.store.get(&root, &self.path)? {
            Some(bytes) => {
                std::io::stdout().lock().write_all(&bytes)?;
                Ok(ExitCode::SUCCESS)
            }
            None => bail!("no file at {}; `kith ls` lists what there is", self.path),
        }
    }
}

/// Delete one file (or, with -r, a folder and everything in it) as a commit.
#[derive(Args, Debug)]
pub struct Rm {
    /// What to delete
    pub path: String,
    /// Delete a folder and everything under it
    #[arg(short, long)]
    pub recursive: bool,
    /// The commit message [default: "rm PATH"]
    #[arg(short, long)]
    pub message: Option<String>,
}

impl Rm {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let mut tx = ctx.store.transaction(ctx.branch())?;
        match ctx.store.find(&tx.base_tree(), &self.path)? {
            None => bail!("no file or folder at {}", self.path),
            Some((EntryKind::Dir, _)) if !self.recursive => bail!(
                "{} is a folder; use `kith rm -r` to delete it and everything in it",
                self.path
            ),
            Some(_) => tx.remove(&self.path)?,
        }
        let message = crate::cmd::message(&self.message, || format!("rm {}", self.path));
        print_commit(ctx, tx.commit(&ctx.author(), &message)?)
    }
}

/// List a folder: one name a line, folders with a trailing `/`.
#[derive(Args, Debug)]
pub struct Ls {
    /// The folder [default: the root]
    pub path: Option<String>,
    /// List every file below, with full paths
    #[arg(short, long)]
    pub recursive: bool,
    /// List as of this commit or branch [default: --branch]
    #[arg(long, value_name = "REV")]
    pub at: Option<String>,
}

impl Ls {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let root = root_at(ctx, self.at.as_deref())?;
        let path = self.path.as_deref().unwrap_or("/");
        let names = if self.recursive {
            self.walk(ctx, &root, path)?
        } else {
            self.list(ctx, &root, path)?
        };
        if ctx.global.json {
            crate::output::print_json(&names)?;
        } else {
            let mut out = std::io::stdout().lock();
            for n in &names {
                writeln!(out, "{n}")?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }

    fn list(&self, ctx: &Context, root: &kith_store::Hash, path: &str) -> Result<Vec<String>> {
        if let Some((EntryKind::File, _)) = ctx.store.find(root, path)? {
            return Ok(vec![path.trim_start_matches('/').to_string()]);
        }
        let entries = ctx.store.list(root, path)?;
        Ok(entries
            .into_iter()
            .map(|e| {
                if e.kind == EntryKind::Dir {
                    format!("{}/", e.name)
                } else {
                    e.name
                }
            })
            .collect())
    }

    fn walk(&self, ctx: &Context, root: &kith_store::Hash, path: &str) -> Result<Vec<String>> {
        match ctx.store.find(root, path)? {
            Some((EntryKind::Dir, _)) => {}
            Some((EntryKind::File, _)) => {
                return Ok(vec![path.trim_start_matches('/').to_string()]);
            }
            None => return Ok(vec![]),
        }
        let base = path.trim_matches('/');
        let mut out = Vec::new();
        ctx.store.walk_files_at(root, path, &mut |p, _| {
            out.push(if base.is_empty() {
                p.to_string()
            } else {
                format!("{base}/{p}")
            });
            Ok(())
        })?;
        Ok(out)
    }
}

/// The root tree at a revision, or at the branch head.
pub fn root_at(ctx: &Context, rev: Option<&str>) -> Result<kith_store::Hash> {
    match rev {
        Some(rev) => Ok(ctx.store.commit(&ctx.store.resolve(rev)?)?.tree),
        None => Ok(ctx.store.head_tree(ctx.branch())?),
    }
}

fn print_commit(ctx: &Context, commit: Option<kith_store::Hash>) -> Result<ExitCode> {
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({ "commit": commit.map(|h| h.to_hex()) }))?;
    } else {
        match commit {
            Some(h) => println!("committed {}", h.short()),
            None => println!("nothing changed"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
