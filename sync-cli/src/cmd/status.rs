//! `kith status`: the store, its branches, and the running services.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::context::Context;
use crate::running::Service;

/// Show the store, its branches and the services running on it with their endpoints.
#[derive(Args, Debug)]
pub struct Status {}

/// What `status --json` prints.
#[derive(Serialize)]
struct StatusJson {
    store: String,
    device: String,
    branches: Vec<BranchJson>,
    services: Vec<Service>,
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
    let status = StatusJson {
        store: ctx.dir.display().to_string(),
        device: ctx.author(),
        branches,
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
    if status.services.is_empty() {
        println!("services: none running; start them with `kith up`");
    }
    for s in &status.services {
        println!("  service {} at {}", s.name, s.endpoints.join(" "));
    }
    Ok(())
}
