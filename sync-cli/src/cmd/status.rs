//! `kith status`: the store, its branches, and the running services.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::running::Service;

/// Show the store, its branches, how --branch stands against each remote (commits ahead
/// and behind, as of the last fetch), open conflicts, and the services running on it
/// with their endpoints.
#[derive(Args, Debug)]
pub struct Status {}

/// What `status --json` prints.
#[derive(Serialize)]
struct StatusJson {
    store: String,
    device: String,
    scope: Vec<String>,
    branches: Vec<BranchJson>,
    remotes: Vec<RemoteJson>,
    conflicts: Vec<String>,
    services: Vec<Service>,
}

#[derive(Serialize)]
struct RemoteJson {
    name: String,
    url: String,
    ahead: usize,
    behind: usize,
}

#[derive(Serialize)]
struct BranchJson {
    name: String,
    commit: String,
    time: String,
    message: String,
}

impl Status {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        print(ctx)?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints the status of an open store.
pub fn print(ctx: &Context) -> Result<()> {
    let mut branches = Vec::new();
    for (name, head) in ctx.store.branches()? {
        let c = ctx.store.commit(&head)?;
        branches.push(BranchJson {
            name,
            commit: head.to_hex(),
            time: crate::output::time(c.time),
            message: c.message,
        });
    }
    let tree = ctx.store.head_tree(ctx.branch())?;
    let status = StatusJson {
        store: ctx.dir.display().to_string(),
        device: ctx.author(),
        scope: ctx.store.scope().list().to_vec(),
        branches,
        remotes: remotes(ctx)?,
        conflicts: ctx
            .store
            .conflicts(&tree)?
            .into_iter()
            .map(|c| format!("/{}", c.path))
            .collect(),
        services: crate::running::list(&ctx.dir),
    };
    if ctx.global.json {
        return crate::output::print_json(&status);
    }
    println!("store {} (device {})", status.store, status.device);
    for b in &status.branches {
        println!(
            "  branch {} at {} ({}): {}",
            b.name,
            &b.commit[..12],
            b.time,
            b.message
        );
    }
    if !status.scope.is_empty() {
        println!("  partial replica holding {}", ctx.store.scope());
    }
    for r in &status.remotes {
        println!(
            "  remote {} at {}: {} ahead, {} behind (as of the last fetch)",
            r.name, r.url, r.ahead, r.behind
        );
    }
    if !status.conflicts.is_empty() {
        println!(
            "  {} conflicts to settle (`kith conflicts`): {}",
            status.conflicts.len(),
            status.conflicts.join(" ")
        );
    }
    if status.services.is_empty() {
        println!("services: none running; start them with `kith up`");
    }
    for s in &status.services {
        println!("  service {} at {}", s.name, s.endpoints.join(" "));
    }
    Ok(())
}

/// Each remote and how --branch stands against its tracking branch.
fn remotes(ctx: &Context) -> Result<Vec<RemoteJson>> {
    let local = ctx.store.head(ctx.branch())?;
    let mut out = Vec::new();
    for (name, remote) in &ctx.config.remotes {
        let tracking = ctx
            .store
            .head(&kith_store::sync::tracking_branch(name, ctx.branch()))?;
        let reach = |h: Option<kith_store::Hash>| match h {
            Some(h) => ctx.store.ancestors(h),
            None => Ok(Default::default()),
        };
        let (ours, theirs) = (reach(local)?, reach(tracking)?);
        out.push(RemoteJson {
            name: name.clone(),
            url: remote.url.clone(),
            ahead: ours.difference(&theirs).count(),
            behind: theirs.difference(&ours).count(),
        });
    }
    Ok(out)
}
