//! `kith import`: make a prefix hold exactly the files of a folder, as one commit.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use kith_store::{Entry, EntryKind, Hash, Store};

use crate::context::Context;

/// Make PREFIX hold exactly the files under SRC, as one commit: new and changed files are
/// added, files missing from SRC are removed. Works for a vdir (one .vcf or .ics per item)
/// or any tree of files. Bytes are stored exactly as they are.
///
/// Under /mail/, SRC may be a Maildir (the mailbox then holds exactly its messages, with
/// the flags its file names carry) or an mbox file (its messages are added).
#[derive(Args, Debug)]
pub struct Import {
    /// The folder to read
    pub src: PathBuf,
    /// Where in the store, e.g. /contacts/me/default
    pub prefix: String,
    /// The commit message [default: "import SRC into PREFIX"]
    #[arg(short, long)]
    pub message: Option<String>,
}

impl Import {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        if kith_store::split_path(&self.prefix)?.is_empty() {
            bail!("PREFIX must name a folder below the root, e.g. /contacts/me/default");
        }
        if crate::cmd::mail::is_mail_import(&self.prefix, &self.src) {
            return crate::cmd::mail::import(ctx, &self.src, &self.prefix, self.message.clone());
        }
        let meta = std::fs::metadata(&self.src)
            .with_context(|| format!("reading {}", self.src.display()))?;
        if !meta.is_dir() {
            bail!(
                "{} is not a folder; to store one file use `kith put PATH FILE`",
                self.src.display()
            );
        }
        // Counting walks the folder once more: only worth it for a bar someone sees.
        let total = crate::output::interactive()
            .then(|| count_files(&self.src))
            .transpose()?;
        let bar = crate::output::progress(total, "importing");
        let mut tx = ctx.store.transaction(ctx.branch())?;
        let dir = import_dir(&ctx.store, &self.src, &bar)?;
        let files = bar.position();
        bar.finish_and_clear();
        tx.set(&self.prefix, dir.map(|h| (EntryKind::Dir, h)))?;
        let message = crate::cmd::message(&self.message, || {
            format!("import {} into {}", self.src.display(), self.prefix)
        });
        let commit = tx.commit(&ctx.author(), &message)?;
        report(ctx, commit, files)
    }
}

fn report(ctx: &Context, commit: Option<Hash>, files: u64) -> Result<ExitCode> {
    if ctx.global.json {
        crate::output::print_json(
            &serde_json::json!({ "commit": commit.map(|h| h.to_hex()), "files": files }),
        )?;
    } else {
        match commit {
            Some(h) => println!("{files} files; committed {}", h.short()),
            None => println!("{files} files; nothing changed"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Files under a folder, recursively (for the progress bar).
fn count_files(dir: &Path) -> Result<u64> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            n += count_files(&entry.path())?;
        } else if kind.is_file() {
            n += 1;
        }
    }
    Ok(n)
}

/// Writes a folder's files and subfolders into the store; `None` if it holds no files.
pub fn import_dir(store: &Store, dir: &Path, bar: &ProgressBar) -> Result<Option<Hash>> {
    let mut entries = Vec::new();
    for item in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let item = item?;
        let path = item.path();
        let name = item.file_name().into_string().map_err(|n| {
            anyhow::anyhow!(
                "{}: file name {n:?} is not UTF-8; rename it to import it",
                dir.display()
            )
        })?;
        kith_store::validate_name(&name)
            .map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
        let kind = item.file_type()?;
        if kind.is_dir() {
            if let Some(hash) = import_dir(store, &path, bar)? {
                entries.push(Entry {
                    name,
                    kind: EntryKind::Dir,
                    hash,
                });
            }
        } else if kind.is_file() {
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            entries.push(Entry {
                name,
                kind: EntryKind::File,
                hash: store.write_blob(&bytes)?,
            });
            bar.inc(1);
        } else {
            tracing::warn!("skipping {}: not a regular file or folder", path.display());
        }
    }
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(store.write_dir(entries)?))
}
