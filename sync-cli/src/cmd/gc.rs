//! `kith gc`: drop unreachable objects.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::context::Context;

/// Drop every object no branch reaches (deleted branches, replaced imports). Safe while
/// services and other commands use the store.
#[derive(Args, Debug)]
pub struct Gc {}

impl Gc {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let r = ctx.store.gc()?;
        if ctx.global.json {
            crate::output::print_json(&serde_json::json!({
                "kept": r.kept, "dropped": r.dropped, "bytes_before": r.bytes_before, "bytes_after": r.bytes_after,
            }))?;
        } else {
            println!(
                "kept {} objects, dropped {}; {} -> {} bytes",
                r.kept, r.dropped, r.bytes_before, r.bytes_after
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}
