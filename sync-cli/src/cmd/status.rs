//! `kith status`: the store, its branches, and the running services.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use serde::Serialize;

use crate::context::Context;

/// Show the store, its branches and the services running on it with their endpoints.
#[derive(Args, Debug)]
pub struct Status {}

/// What `status --json` prints.
#[derive(Serialize)]
struct StatusJson {
    store: String,
    device: String,
    branches: Vec<BranchJson>,
    services: Vec<ServiceJson>,
}

#[derive(Serialize)]
struct BranchJson {
    name: String,
    commit: String,
    time: String,
    message: String,
}

/// A running service and where it answers.
#[derive(Serialize)]
struct ServiceJson {
    name: String,
    endpoints: Vec<String>,
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
        services: Vec::new(),
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
    println!("services: none running");
    Ok(())
}
