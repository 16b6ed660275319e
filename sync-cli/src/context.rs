//! Finding and opening the store, and the per-store settings in its `kith.toml`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use kith_store::Store;
use serde::{Deserialize, Serialize};

use crate::args::Global;

/// The settings file inside a store folder.
pub const CONFIG_FILE: &str = "kith.toml";

/// Per-store settings, from `kith.toml`; every field has a default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This device's name: the author of its commits.
    pub device: Option<String>,
    /// Where `kith serve contacts` and `kith up` serve CardDAV (default: a free port on
    /// the loopback address, or on `kith up --listen`).
    pub contacts_listen: Option<std::net::SocketAddr>,
    /// Where `kith serve calendar` and `kith up` serve CalDAV (default: a free port on
    /// the loopback address, or on `kith up --listen`).
    pub calendar_listen: Option<std::net::SocketAddr>,
    /// Where `kith serve mail` and `kith up` serve IMAP over TLS (default: a free port on
    /// the loopback address, or on `kith up --listen`).
    pub imap_listen: Option<std::net::SocketAddr>,
    /// Other replicas this one syncs with, by name.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub remotes: BTreeMap<String, Remote>,
}

/// Another replica, as `[remotes.NAME]` in `kith.toml`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// Its sync service, `kith://host:port`.
    pub url: String,
}

impl Config {
    /// The remote `name`, or the default one: `origin`, else the only one.
    pub fn remote(&self, name: Option<&str>) -> Result<(String, Remote)> {
        let name = match name {
            Some(n) => n.to_string(),
            None if self.remotes.contains_key("origin") => "origin".into(),
            None if self.remotes.len() == 1 => {
                self.remotes.keys().next().cloned().unwrap_or_default()
            }
            None if self.remotes.is_empty() => anyhow::bail!(
                "this replica has no remote: add one with `kith remote add NAME kith://HOST:PORT`"
            ),
            None => anyhow::bail!(
                "this replica has several remotes and none is `origin`: name one ({})",
                self.remotes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        match self.remotes.get(&name) {
            Some(r) => Ok((name, r.clone())),
            None => anyhow::bail!("no remote named {name}; `kith remote list` shows them"),
        }
    }

    /// Reads `kith.toml` from a store folder (defaults if absent).
    pub fn load(store_dir: &Path) -> Result<Config> {
        let path = store_dir.join(CONFIG_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes `kith.toml` into a store folder.
    pub fn save(&self, store_dir: &Path) -> Result<()> {
        let path = store_dir.join(CONFIG_FILE);
        let temp = store_dir.join(format!(".{CONFIG_FILE}.tmp"));
        std::fs::write(&temp, toml::to_string(self)?)
            .and_then(|()| std::fs::rename(&temp, &path))
            .with_context(|| format!("writing {}", path.display()))
    }
}

/// An open store with what commands need alongside it.
pub struct Context {
    pub store: Store,
    pub dir: PathBuf,
    pub config: Config,
    pub global: Global,
}

impl Context {
    /// Opens the store the global options name; a `disk:FILE` store is opened on that
    /// disk image, with default settings.
    pub fn open(global: &Global) -> Result<Context> {
        let dir = store_dir(global)?;
        if let Some(disk) = disk_image(&dir) {
            return Ok(Context {
                store: Store::open_disk(&disk)?,
                dir: disk,
                config: Config::default(),
                global: global.clone(),
            });
        }
        let store = Store::open(&dir)?;
        let config = Config::load(&dir)?;
        Ok(Context {
            store,
            dir,
            config,
            global: global.clone(),
        })
    }

    /// The author recorded in commits made here: the device name, else the host name.
    pub fn author(&self) -> String {
        self.config.device.clone().unwrap_or_else(host_name)
    }

    /// The branch the command works on.
    pub fn branch(&self) -> &str {
        &self.global.branch
    }
}

/// The store folder: `--store`, else `$KITH_STORE` (clap reads both), else the XDG data dir.
pub fn store_dir(global: &Global) -> Result<PathBuf> {
    if let Some(dir) = &global.store {
        return Ok(dir.clone());
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("cannot find a place for the store: set --store, $KITH_STORE or $HOME")?;
    Ok(data.join("kith"))
}

/// The disk image a `disk:FILE` store names.
pub fn disk_image(store: &Path) -> Option<PathBuf> {
    store.to_str()?.strip_prefix("disk:").map(PathBuf::from)
}

/// This machine's host name, or `device` if it has none.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "device".to_string())
}
