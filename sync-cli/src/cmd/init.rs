//! `kith init`: create a store.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;
use kith_store::Store;

use crate::args::Global;
use crate::context::{Config, host_name, store_dir};

/// Create a new, empty store (in --store, $KITH_STORE or ~/.local/share/kith).
#[derive(Args, Debug)]
pub struct Init {
    /// This device's name, recorded as the author of its commits [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
}

impl Init {
    pub fn run(&self, global: &Global) -> Result<ExitCode> {
        let dir = store_dir(global)?;
        create(&dir, self.device.clone())?;
        if global.json {
            crate::output::print_json(&serde_json::json!({ "store": dir }))?;
        } else {
            println!("created an empty Kith store in {}", dir.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Creates the store folder with its settings file.
pub fn create(dir: &std::path::Path, device: Option<String>) -> Result<Store> {
    let store =
        Store::create(dir).with_context(|| format!("creating a store in {}", dir.display()))?;
    let config = Config {
        device: Some(device.unwrap_or_else(host_name)),
    };
    config.save(dir)?;
    Ok(store)
}
