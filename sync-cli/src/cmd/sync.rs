//! `kith fetch`, `kith push` and `kith sync`: moving commits between this replica and
//! another one's sync service.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use indicatif::HumanBytes;

use crate::context::Context;
use crate::remote::{self, Fetched, Pushed, Synced, Url};

/// Bring this replica and REMOTE together: fetch its commits, merge its --branch into
/// ours (vCards, events and flags property by property; conflicts are kept and listed),
/// then push the result back. Prints what changed here and any conflicts.
#[derive(Args, Debug)]
pub struct Sync {
    /// The remote [default: origin, or the only one]
    pub remote: Option<String>,
}

/// Fetch REMOTE's branches into remotes/REMOTE/BRANCH, changing nothing else; an
/// interrupted fetch resumes where it stopped.
#[derive(Args, Debug)]
pub struct Fetch {
    /// The remote [default: origin, or the only one]
    pub remote: Option<String>,
}

/// Push --branch to REMOTE; refused unless it is a fast-forward of REMOTE's branch (run
/// `kith sync` to merge first).
#[derive(Args, Debug)]
pub struct Push {
    /// The remote [default: origin, or the only one]
    pub remote: Option<String>,
}

impl Sync {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (name, r) = ctx.config.remote(self.remote.as_deref())?;
        let url = Url::parse(&r.url)?;
        let synced = remote::sync_branch(ctx, &name, &url, &remote::credentials(ctx)?)?;
        if ctx.global.json {
            crate::output::print_json(&synced)?;
        } else {
            print_synced(ctx, &name, &synced);
        }
        Ok(exit_code(&synced.pushed, !synced.conflicts.is_empty()))
    }
}

impl Fetch {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (name, r) = ctx.config.remote(self.remote.as_deref())?;
        let url = Url::parse(&r.url)?;
        let mut link = remote::Link::open(&url, &remote::credentials(ctx)?)?;
        let fetched = link.fetch(&ctx.store, &name)?;
        if ctx.global.json {
            crate::output::print_json(&fetched)?;
        } else {
            print_fetched(&name, &fetched);
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Push {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let (name, r) = ctx.config.remote(self.remote.as_deref())?;
        let url = Url::parse(&r.url)?;
        let mut link = remote::Link::open(&url, &remote::credentials(ctx)?)?;
        let pushed = link.push(&ctx.store, &name, ctx.branch())?;
        if ctx.global.json {
            crate::output::print_json(&pushed)?;
        } else {
            print_pushed(&name, ctx.branch(), &pushed);
        }
        Ok(exit_code(&pushed, false))
    }
}

/// 0 when done, 1 when there are conflicts to settle or the push was refused.
fn exit_code(pushed: &Pushed, conflicts: bool) -> ExitCode {
    match (pushed, conflicts) {
        (Pushed::Refused { .. }, _) | (_, true) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}

/// Prints a fetch's summary line.
pub fn print_fetched(remote: &str, f: &Fetched) {
    println!(
        "fetched from {remote}: {} commits, {} objects ({}) in {:.2} s, {} over the wire",
        f.commits,
        f.objects,
        HumanBytes(f.bytes),
        f.seconds,
        HumanBytes(f.received)
    );
}

fn print_pushed(remote: &str, branch: &str, p: &Pushed) {
    match p {
        Pushed::UpToDate => println!("{remote}'s {branch} is up to date"),
        Pushed::Moved { commit } => {
            println!("pushed: {remote}'s {branch} is now at {}", &commit[..12])
        }
        Pushed::Refused { reason } => eprintln!("kith: push refused: {reason}"),
    }
}

fn print_synced(ctx: &Context, remote: &str, s: &Synced) {
    print_fetched(remote, &s.fetched);
    for c in &s.changes {
        println!("  {:<8} {}", c.change, c.path);
    }
    match s.merge {
        "up-to-date" => println!("{} already had everything of {remote}", ctx.branch()),
        kind => println!("{kind}: {} changed files here", s.changes.len()),
    }
    print_pushed(remote, ctx.branch(), &s.pushed);
    if !s.conflicts.is_empty() {
        eprintln!(
            "kith: {} paths conflict; both sides are kept. `kith conflicts` lists them, `kith resolve PATH [FILE]` settles each:",
            s.conflicts.len()
        );
        for c in &s.conflicts {
            eprintln!("  {c}");
        }
    }
}
