//! `kith device add|revoke`: enrol a device of the user's identity, or revoke one.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use kith_identity::Site;

use crate::context::Context;

/// Enrol a device (its certificate, key and TSIG key in one bundle file) or revoke one.
#[derive(Args, Debug)]
pub struct Device {
    #[command(subcommand)]
    pub action: DeviceAction,
}

/// What to do with a device.
#[derive(Subcommand, Debug)]
pub enum DeviceAction {
    /// Enrol a device and write its bundle (`--json` prints it instead)
    Add(Add),
    /// Revoke a device: its certificate and TSIG key stop working everywhere
    Revoke(Revoke),
}

/// `kith device add NAME [-o BUNDLE]`.
#[derive(Args, Debug)]
pub struct Add {
    /// The device's name: one DNS label, it becomes NAME.<zone>
    pub name: String,
    /// Where to write the bundle [default: ./NAME.kith-bundle.json]
    #[arg(short = 'o', long, value_name = "BUNDLE")]
    pub output: Option<PathBuf>,
}

/// `kith device revoke NAME`.
#[derive(Args, Debug)]
pub struct Revoke {
    /// The device to revoke
    pub name: String,
}

impl Device {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        match &self.action {
            DeviceAction::Add(add) => add.run(ctx, &site),
            DeviceAction::Revoke(revoke) => revoke.run(ctx, &site),
        }
    }
}

impl Add {
    fn run(&self, ctx: &Context, site: &Site) -> Result<ExitCode> {
        let bundle = site.add_device(&self.name, &ctx.author())?;
        if ctx.global.json && self.output.is_none() {
            crate::output::print_json(&bundle)?;
            return Ok(ExitCode::SUCCESS);
        }
        let path = self
            .output
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{}.kith-bundle.json", self.name)));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        file.write_all(serde_json::to_string_pretty(&bundle)?.as_bytes())?;
        if ctx.global.json {
            crate::output::print_json(&serde_json::json!({
                "device": bundle.device, "host": bundle.host, "bundle": path,
            }))?;
        } else {
            println!(
                "enrolled {} as {}; its bundle (with its private key) is in {}",
                bundle.device,
                bundle.host,
                path.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Revoke {
    fn run(&self, ctx: &Context, site: &Site) -> Result<ExitCode> {
        let serial = site.revoke_device(&self.name, &ctx.author())?;
        if ctx.global.json {
            crate::output::print_json(&serde_json::json!({
                "device": self.name, "serial": serial,
            }))?;
        } else {
            println!("revoked {} (certificate serial {serial})", self.name);
        }
        Ok(ExitCode::SUCCESS)
    }
}
