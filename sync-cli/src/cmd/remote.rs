//! `kith remote`: the other replicas this one syncs with.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use kith_store::sync;

use crate::context::{Context, Remote as RemoteConfig};
use crate::remote::Url;

/// Name the replicas this one syncs with (kept in the store's kith.toml); with no
/// subcommand, list them.
#[derive(Args, Debug)]
pub struct Remote {
    #[command(subcommand)]
    pub action: Option<Action>,
}

/// What to do with remotes.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Add a remote: `kith remote add home kith://board.example.home.arpa:7447`
    Add {
        /// Its name (letters, digits, `-`, `_`, `.`)
        name: String,
        /// Its sync service: kith://HOST[:PORT] (port 7447 by default)
        url: String,
    },
    /// List the remotes and their URLs
    List,
    /// Forget a remote and its remote-tracking branches
    Remove {
        /// The remote's name
        name: String,
    },
}

impl Remote {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match self.action.as_ref().unwrap_or(&Action::List) {
            Action::Add { name, url } => add(ctx, name, url)?,
            Action::List => list(ctx)?,
            Action::Remove { name } => remove(ctx, name)?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn add(ctx: &Context, name: &str, url: &str) -> Result<()> {
    if !kith_store::backend::validate_ref_name(name) || name.contains('/') {
        bail!("{name:?} cannot name a remote: use letters, digits, `-`, `_` and `.`");
    }
    if ctx.config.remotes.contains_key(name) {
        bail!("remote {name} exists; `kith remote remove {name}` first to change it");
    }
    let url = Url::parse(url)?;
    let mut config = ctx.config.clone();
    config.remotes.insert(
        name.to_string(),
        RemoteConfig {
            url: url.to_string(),
        },
    );
    config.save(&ctx.dir)?;
    println!("added remote {name} at {url}; `kith sync {name}` syncs with it");
    Ok(())
}

fn list(ctx: &Context) -> Result<()> {
    if ctx.global.json {
        let remotes: serde_json::Map<_, _> = ctx
            .config
            .remotes
            .iter()
            .map(|(n, r)| (n.clone(), serde_json::json!({ "url": r.url })))
            .collect();
        return crate::output::print_json(&remotes);
    }
    for (name, r) in &ctx.config.remotes {
        println!("{name}\t{}", r.url);
    }
    Ok(())
}

fn remove(ctx: &Context, name: &str) -> Result<()> {
    let mut config = ctx.config.clone();
    if config.remotes.remove(name).is_none() {
        bail!("no remote named {name}; `kith remote list` shows them");
    }
    config.save(&ctx.dir)?;
    let prefix = sync::tracking_branch(name, "");
    for (branch, head) in ctx.store.branches()? {
        if branch.starts_with(&prefix) {
            ctx.store.set_branch(&branch, Some(head), None)?;
        }
    }
    println!("removed remote {name}");
    Ok(())
}
