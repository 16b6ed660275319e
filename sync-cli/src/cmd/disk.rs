//! `kith disk write DISK`: put the store onto a disk image for a unikernel service.
//!
//! The image holds the store in kith-store's disk layout (a superblock, two ref tables and
//! the pack's records; see `kith_store::backend::disk`). A service image opens it as
//! `/dev/vda` (`kith run IMAGE --disk DISK`); on the host, any command reads or changes
//! it with `--store disk:DISK` (for example `kith --store disk:DISK fsck`).
//!
//! The replica's secrets an image needs (never in the synced store) go onto the image's
//! branch [`SERVICE_KEYS`], laid out as in the local folder, which a branch named
//! `local/...` never leaves: the service keys (`services/NAME.key`), so that an image can
//! serve TLS with the service certificate its identity holds and sync as that service;
//! the zone's DKIM key (`dkim.key`) with mail's, to sign the mail it sends; the devices'
//! TSIG secrets (`tsig/DEVICE.key`) with dns's, to check their signed updates. The image
//! is then as secret as those files. `--key` limits them to one service's.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};
use kith_identity::local::{self, Local};
use kith_store::{ObjectStore, Store};

use crate::context::Context;

/// The disk image's branch holding the replica's service keys, one file per service
/// (`dav.key`, ...), for the service images.
pub const SERVICE_KEYS: &str = "local/services";

/// The services whose keys an image may need: every service certificate's.
fn services() -> impl Iterator<Item = &'static str> {
    kith_identity::enroll::SERVICES.iter().map(|s| s.name)
}

/// Disk images holding a store, for unikernel services.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
kith disk write zone.raw                  this store onto a new 64 MiB image\n  \
kith run kith-dns-x86_64.img --disk zone.raw --forward udp:5353:53 --forward 5353:53\n  \
kith --store disk:zone.raw fsck           check the image afterwards")]
pub struct Disk {
    #[command(subcommand)]
    pub command: DiskCommand,
}

/// What to do with a disk image.
#[derive(Subcommand, Debug)]
pub enum DiskCommand {
    /// Write this store's objects and branches onto a disk image, replacing its contents
    Write(Write),
}

/// `kith disk write`.
#[derive(Args, Debug)]
pub struct Write {
    /// The disk image (created when missing) or block device
    #[arg(value_name = "DISK")]
    pub disk: PathBuf,
    /// The size of a new image in MiB (an existing one keeps its size)
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub size: u64,
    /// Put only this service's secrets on the image (dav, mail, sync, dns; repeatable;
    /// mail brings the DKIM key, dns the devices' TSIG secrets) [default: every service's]
    #[arg(long = "key", value_name = "SERVICE", value_parser = clap::builder::PossibleValuesParser::new(services()))]
    pub keys: Vec<String>,
}

impl Disk {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match &self.command {
            DiskCommand::Write(write) => write.run(ctx),
        }
    }
}

impl Write {
    fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let written = self.write(ctx)?;
        println!("{}: {written}", self.disk.display());
        Ok(ExitCode::SUCCESS)
    }

    /// Writes the store onto the disk (made at `size` MiB when missing).
    pub fn write(&self, ctx: &Context) -> Result<Written> {
        self.make_image()?;
        let disk = Store::create_disk(&self.disk)?;
        let objects = copy_objects(&ctx.store, &disk)?;
        let branches = ctx.store.branches()?;
        for (name, head) in &branches {
            disk.set_branch(name, None, Some(*head))?;
        }
        let services: Vec<&str> = match self.keys.is_empty() {
            true => services().collect(),
            false => self.keys.iter().map(String::as_str).collect(),
        };
        let keys = write_service_keys(ctx, &disk, &services)?;
        Ok(Written {
            objects,
            branches: branches.len(),
            keys,
        })
    }

    /// Creates the image file at its size when it does not exist.
    fn make_image(&self) -> Result<()> {
        if self.disk.exists() {
            return Ok(());
        }
        if self.size < 1 {
            bail!("--size must be at least 1 MiB");
        }
        let file = std::fs::File::create(&self.disk)
            .with_context(|| format!("creating {}", self.disk.display()))?;
        file.set_len(self.size << 20)
            .with_context(|| format!("sizing {}", self.disk.display()))?;
        Ok(())
    }
}

/// What [`Write::write`] put on a disk.
pub struct Written {
    objects: u64,
    branches: usize,
    keys: usize,
}

impl std::fmt::Display for Written {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} objects, {} branches, {} secrets",
            self.objects, self.branches, self.keys
        )
    }
}

/// Copies every object of `from` into `to` and makes them durable; returns how many.
fn copy_objects(from: &Store, to: &Store) -> Result<u64> {
    let (source, target) = (from.object_store(), to.object_store());
    let mut copied = 0;
    source.for_each_hash(&mut |hash| {
        if let Some(bytes) = source.read(hash)? {
            target.write(hash, &bytes)?;
            copied += 1;
        }
        Ok(())
    })?;
    ObjectStore::sync(&**target)?;
    Ok(copied)
}

/// Replaces `disk`'s [`SERVICE_KEYS`] branch with the replica's keys of `services`, laid
/// out as in the local folder (`services/NAME.key`), with the DKIM key beside mail's and
/// the enrolled devices' TSIG secrets (`tsig/DEVICE.key`) beside dns's; returns how many.
pub fn write_service_keys(ctx: &Context, disk: &Store, services: &[&str]) -> Result<usize> {
    let local = Local::new(&ctx.dir);
    let mut files = Vec::new();
    for service in services {
        files.push(local::service_key(service));
    }
    if services.contains(&"mail") {
        files.push(local::DKIM_KEY.to_string());
    }
    if services.contains(&"dns") {
        let tree = ctx.store.head_tree(ctx.branch())?;
        for device in ctx.store.list(&tree, "/identity/tsig")? {
            files.push(local::tsig_key(&device.name));
        }
    }
    if let Some(old) = disk.head(SERVICE_KEYS)? {
        disk.set_branch(SERVICE_KEYS, Some(old), None)?;
    }
    let mut tx = disk.transaction(SERVICE_KEYS)?;
    let mut copied = 0;
    for file in &files {
        if let Some(key) = local.read(file)? {
            tx.put(file, &key)?;
            copied += 1;
        }
    }
    if copied > 0 {
        tx.commit(&ctx.author(), "kith disk write: the service keys")?;
    }
    Ok(copied)
}
