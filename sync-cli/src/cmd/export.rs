//! `kith export`: write the files under a prefix into a folder.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kith_store::EntryKind;

use crate::context::Context;

/// Write the files under PREFIX into the folder DEST, byte for byte, e.g. a vdir for khard
/// or khal. DEST must be empty or absent, unless --mirror is given. A mailbox under
/// /mail/ is written as a Maildir (cur/, new/, tmp/; flags in the file names), which
/// `kith import DEST PREFIX` reads back.
#[derive(Args, Debug)]
pub struct Export {
    /// What to export, e.g. /contacts/me/default
    pub prefix: String,
    /// The folder to write
    pub dest: PathBuf,
    /// Make DEST hold exactly PREFIX's files: overwrite changed ones and delete files that
    /// are not in the store (use after editing there and importing, to pick up synced changes)
    #[arg(long)]
    pub mirror: bool,
}

impl Export {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        if let Some(done) = crate::cmd::mail::export(ctx, &self.prefix, &self.dest)? {
            return Ok(done);
        }
        let root = ctx.store.head_tree(ctx.branch())?;
        match ctx.store.find(&root, &self.prefix)? {
            Some((EntryKind::Dir, _)) => {}
            Some((EntryKind::File, _)) => {
                bail!("{} is a file; read it with `kith get`", self.prefix)
            }
            None => bail!(
                "nothing at {} on branch {}; `kith ls` shows what there is",
                self.prefix,
                ctx.branch()
            ),
        };
        if !self.mirror && is_non_empty_dir(&self.dest)? {
            bail!(
                "{} is not empty; pass --mirror to make it hold exactly {}'s files (others are deleted)",
                self.dest.display(),
                self.prefix
            );
        }
        let bar = crate::output::progress(None, "exporting");
        let mut written = std::collections::BTreeSet::new();
        ctx.store
            .walk_files_at(&root, &self.prefix, &mut |path, blob| {
                let target = self.dest.join(path);
                let bytes = ctx.store.blob(blob)?;
                write_file(&target, &bytes)
                    .map_err(|e| kith_store::Error::io("writing", &target, e))?;
                written.insert(target);
                bar.inc(1);
                Ok(())
            })?;
        bar.finish_and_clear();
        let deleted = if self.mirror {
            delete_others(&self.dest, &written)?
        } else {
            0
        };
        if ctx.global.json {
            crate::output::print_json(
                &serde_json::json!({ "files": written.len(), "deleted": deleted }),
            )?;
        } else {
            println!(
                "wrote {} files into {}{}",
                written.len(),
                self.dest.display(),
                if deleted > 0 {
                    format!(", deleted {deleted}")
                } else {
                    String::new()
                }
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn is_non_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_some()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Writes a file unless it already holds exactly these bytes (so tools watching mtimes see
/// only real changes); creates parent folders.
fn write_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_file_name(format!(
        ".{}.kith-tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Deletes files under `dir` that are not in `keep`, and folders left empty.
fn delete_others(dir: &Path, keep: &std::collections::BTreeSet<PathBuf>) -> Result<u64> {
    let mut deleted = 0;
    for item in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = item?.path();
        if path.is_dir() {
            deleted += delete_others(&path, keep)?;
            if std::fs::read_dir(&path)?.next().is_none() {
                std::fs::remove_dir(&path)?;
            }
        } else if !keep.contains(&path) {
            std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
            deleted += 1;
        }
    }
    Ok(deleted)
}
