//! `kith up`: run the whole suite on the local store.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kith_store::Store;

use crate::args::Global;
use crate::context::{Config, Context, store_dir};

/// Run Kith on this machine: open the store (creating it on first run) and start the
/// services on loopback. The services arrive with their crates; today `up` opens and
/// checks the store and reports it.
#[derive(Args, Debug)]
pub struct Up {}

impl Up {
    pub fn run(&self, global: &Global) -> Result<ExitCode> {
        let dir = store_dir(global)?;
        let created = match Store::open(&dir) {
            Ok(_) => false,
            Err(kith_store::Error::NoStore(_)) => {
                crate::cmd::init::create(&dir, None)?;
                true
            }
            Err(e) => return Err(e.into()),
        };
        let ctx = Context {
            store: Store::open(&dir)?,
            config: Config::load(&dir)?,
            dir,
            global: global.clone(),
        };
        if !global.json {
            let verb = if created { "created" } else { "opened" };
            println!(
                "{verb} the Kith store in {} (device {})",
                ctx.dir.display(),
                ctx.author()
            );
            println!("no services are built yet: nothing to serve");
        }
        crate::cmd::status::print(&ctx)?;
        Ok(ExitCode::SUCCESS)
    }
}
