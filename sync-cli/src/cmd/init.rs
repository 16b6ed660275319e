//! `kith init`: create a store, and with `--zone` the user's identity.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;
use kith_store::Store;

use crate::args::Global;
use crate::context::{Config, host_name, store_dir};

/// Create a new, empty store (in --store, $KITH_STORE or ~/.local/share/kith); with
/// --zone, also the user's identity: root key, DNS zone and this device. With --zone on
/// a store that has no identity yet (one `kith up` created, say), the identity is added
/// to it.
#[derive(Args, Debug)]
pub struct Init {
    /// This device's name, recorded as the author of its commits [default: the host name]
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Also create the user's identity for this DNS zone (e.g. alice.home.arpa)
    #[arg(long, value_name = "NAME")]
    pub zone: Option<String>,
    /// This device's addresses in the zone (repeatable) [default: 127.0.0.1 and ::1]
    #[arg(long, value_name = "IP", requires = "zone")]
    pub address: Vec<std::net::IpAddr>,
}

impl Init {
    pub fn run(&self, global: &Global) -> Result<ExitCode> {
        let dir = store_dir(global)?;
        if let Some(zone) = &self.zone
            && let Ok(store) = Store::open(&dir)
        {
            return self.add_identity(global, &dir, store, zone);
        }
        let store = create(&dir, self.device.clone())?;
        if let Some(zone) = &self.zone {
            return self.create_identity(global, &dir, store, zone, false);
        }
        if global.json {
            crate::output::print_json(&serde_json::json!({ "store": dir }))?;
        } else {
            println!("created an empty Kith store in {}", dir.display());
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl Init {
    /// Adds the identity to an existing store, which must not have one yet; `--device`
    /// renames this device first.
    fn add_identity(
        &self,
        global: &Global,
        dir: &std::path::Path,
        store: Store,
        zone: &str,
    ) -> Result<ExitCode> {
        let site = kith_identity::Site::new(store.clone(), &global.branch, dir);
        if let Ok(origin) = site.origin() {
            anyhow::bail!(
                "the Kith store in {} already has the identity of {origin}; use another --store \
for a new one",
                dir.display()
            );
        }
        if let Some(device) = &self.device {
            let mut config = Config::load(dir)?;
            config.device = Some(device.clone());
            config.save(dir)?;
        }
        self.create_identity(global, dir, store, zone, true)
    }

    fn create_identity(
        &self,
        global: &Global,
        dir: &std::path::Path,
        store: Store,
        zone: &str,
        added: bool,
    ) -> Result<ExitCode> {
        let device = Config::load(dir)?.device.unwrap_or_else(host_name);
        let addresses = if self.address.is_empty() {
            vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()]
        } else {
            self.address.clone()
        };
        let site = kith_identity::Site::new(store, &global.branch, dir);
        site.create(zone, &device, &addresses)
            .with_context(|| format!("creating the identity for {zone}"))?;
        let host = kith_identity::enroll::host_name(&site.origin()?, &device);
        if global.json {
            crate::output::print_json(&serde_json::json!({
                "store": dir, "zone": site.origin()?.to_string(), "device": device, "host": host,
            }))?;
        } else {
            let dir = dir.display();
            match added {
                true => println!("added the identity of {zone} to the Kith store in {dir}"),
                false => println!("created a Kith store in {dir} with the identity of {zone}"),
            }
            println!("this device is {host}");
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
        ..Config::default()
    };
    config.save(dir)?;
    Ok(store)
}
