//! One module per command: its arguments, help and behaviour.

pub mod branch;
pub mod build;
pub mod clone;
pub mod device;
pub mod diff;
pub mod disk;
pub mod export;
pub mod file;
pub mod fsck;
pub mod gc;
pub mod identity;
pub mod import;
pub mod init;
pub mod log;
pub mod mail;
pub mod merge;
pub mod remote;
pub mod run;
pub mod serve;
pub mod status;
pub mod sync;
pub mod up;
pub mod user;

use std::process::ExitCode;

use anyhow::Result;

use crate::args::{Args, Command};
use crate::context::Context;

/// Runs the parsed command.
pub fn run(args: Args) -> Result<ExitCode> {
    let global = &args.global;
    if let Command::Init(init) = &args.command {
        return init.run(global);
    }
    if let Command::Up(up) = &args.command {
        return up.run(global);
    }
    if let Command::Clone(clone) = &args.command {
        return clone.run(global);
    }
    if let Command::Build(build) = &args.command {
        return build.run();
    }
    if let Command::Run(run) = &args.command {
        return run.run();
    }
    let ctx = Context::open(global)?;
    match &args.command {
        Command::Import(c) => c.run(&ctx),
        Command::Export(c) => c.run(&ctx),
        Command::Put(c) => c.run(&ctx),
        Command::Get(c) => c.run(&ctx),
        Command::Rm(c) => c.run(&ctx),
        Command::Ls(c) => c.run(&ctx),
        Command::Log(c) => c.run(&ctx),
        Command::Diff(c) => c.run(&ctx),
        Command::Branch(c) => c.run(&ctx),
        Command::Fsck(c) => c.run(&ctx),
        Command::Gc(c) => c.run(&ctx),
        Command::Status(c) => c.run(&ctx),
        Command::Merge(c) => c.run(&ctx),
        Command::Conflicts(c) => c.run(&ctx),
        Command::Resolve(c) => c.run(&ctx),
        Command::Device(c) => c.run(&ctx),
        Command::Identity(c) => c.run(&ctx),
        Command::Serve(c) => c.run(&ctx),
        Command::Remote(c) => c.run(&ctx),
        Command::Fetch(c) => c.run(&ctx),
        Command::Push(c) => c.run(&ctx),
        Command::Sync(c) => c.run(&ctx),
        Command::User(c) => c.run(&ctx),
        Command::Disk(c) => c.run(&ctx),
        Command::Init(_)
        | Command::Up(_)
        | Command::Clone(_)
        | Command::Build(_)
        | Command::Run(_) => {
            unreachable!("handled above")
        }
    }
}

/// Reads a commit message option, or makes one.
pub fn message(given: &Option<String>, default: impl FnOnce() -> String) -> String {
    given.clone().unwrap_or_else(default)
}
