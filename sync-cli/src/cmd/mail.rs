//! `kith import` and `kith export` for mail: a mailbox under `/mail/` goes out as a
//! Maildir and comes back from a Maildir or an mbox file (see kith-mail's `maildir`).

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};
use kith_mail::mailbox::Mailbox;
use kith_mail::maildir;

use crate::context::Context;

/// Whether an import into `prefix` from `src` is a mail import.
pub fn is_mail_import(prefix: &str, src: &Path) -> bool {
    prefix.starts_with("/mail/")
        && (src.is_file() || src.join("cur").is_dir() || src.join("new").is_dir())
}

/// Imports a Maildir (the mailbox then holds exactly its messages) or an mbox file (its
/// messages are added) into the mailbox at `prefix`, as one commit.
pub fn import(
    ctx: &Context,
    src: &Path,
    prefix: &str,
    message: Option<String>,
) -> Result<ExitCode> {
    let mailbox = Mailbox::at(prefix);
    let mut tx = ctx.store.transaction(ctx.branch())?;
    let seconds = (kith_store::now_millis() / 1000) as u32;
    mailbox.create(&mut tx, seconds)?;
    let (summary, json) = if src.is_file() {
        let added = maildir::import_mbox(&mut tx, &mailbox, src)?;
        (
            format!("{added} messages added"),
            serde_json::json!({ "added": added }),
        )
    } else {
        let r = maildir::import(&ctx.store, &mut tx, &mailbox, src)?;
        (
            format!(
                "{} added, {} with new flags, {} expunged",
                r.added, r.flagged, r.expunged
            ),
            serde_json::json!({ "added": r.added, "flagged": r.flagged, "expunged": r.expunged }),
        )
    };
    let message = message.unwrap_or_else(|| format!("import {} into {prefix}", src.display()));
    let commit = tx.commit(&ctx.author(), &message)?;
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({
            "commit": commit.map(|h| h.to_hex()), "messages": json,
        }))?;
    } else {
        match commit {
            Some(h) => println!("committed {} ({summary})", h.short()),
            None => println!("nothing changed"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes the mailbox at `prefix` as a Maildir in `dest`, if `prefix` is a mailbox.
pub fn export(ctx: &Context, prefix: &str, dest: &Path) -> Result<Option<ExitCode>> {
    let root = ctx.store.head_tree(ctx.branch())?;
    let mailbox = Mailbox::at(prefix);
    if !prefix.starts_with("/mail/") || !mailbox.exists(&ctx.store, &root)? {
        return Ok(None);
    }
    let is_maildir = dest.join("cur").is_dir();
    if !is_maildir && std::fs::read_dir(dest).is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} is not empty and not a Maildir; name a new folder",
            dest.display()
        );
    }
    let written = maildir::export(&ctx.store, &root, &mailbox, dest)?;
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({ "messages": written, "maildir": dest }))?;
    } else {
        println!("wrote {written} messages to the Maildir {}", dest.display());
    }
    Ok(Some(ExitCode::SUCCESS))
}
