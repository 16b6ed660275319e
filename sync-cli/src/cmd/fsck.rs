//! `kith fsck`: verify every reachable object.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use crate::context::Context;

/// Read and verify every object reachable from every branch; list anything missing or
/// damaged. Exits 1 on damage, 0 when the store is sound.
#[derive(Args, Debug)]
pub struct Fsck {}

impl Fsck {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let bar = crate::output::progress(None, "checking");
        let report = ctx.store.fsck(&mut |n| bar.set_position(n))?;
        bar.finish_and_clear();
        if ctx.global.json {
            let damage: Vec<_> = report
                .damage
                .iter()
                .map(|d| serde_json::json!({ "object": d.hash.to_hex(), "reached_from": d.reached_from, "problem": d.problem }))
                .collect();
            crate::output::print_json(
                &serde_json::json!({ "objects": report.objects, "bytes": report.bytes, "damage": damage }),
            )?;
        } else {
            for d in &report.damage {
                println!(
                    "damaged {} (reached from {}): {}",
                    d.hash, d.reached_from, d.problem
                );
            }
            println!(
                "checked {} objects ({} bytes): {}",
                report.objects,
                report.bytes,
                if report.damage.is_empty() {
                    "no damage".to_string()
                } else {
                    format!("{} damaged", report.damage.len())
                }
            );
        }
        Ok(if report.damage.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }
}
