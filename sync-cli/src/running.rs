//! Which services are running on a store and where they answer: each running service
//! writes `<store>/local/run/<name>.json` (its pid and endpoints) and removes it when it
//! stops, so `kith status` in another process can list them.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::{Deserialize, Serialize};

/// A running service as `kith status --json` prints it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// The service: `dns`, `sync`, `contacts`, `calendar`, `mail`.
    pub name: String,
    /// URLs whose scheme names the protocol, e.g. `dns://127.0.0.1:5353`.
    pub endpoints: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Record {
    pid: u32,
    #[serde(flatten)]
    service: Service,
}

/// This process's record of one running service; removed when dropped.
pub struct Registration {
    path: PathBuf,
}

impl Registration {
    /// Records that this process serves `service`.
    pub fn new(store_dir: &Path, service: Service) -> Result<Registration> {
        let dir = run_dir(store_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.json", service.name));
        let record = Record {
            pid: std::process::id(),
            service,
        };
        std::fs::write(&path, serde_json::to_vec(&record)?)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(Registration { path })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The services running on a store, by name; records of processes that died are skipped.
pub fn list(store_dir: &Path) -> Vec<Service> {
    let Ok(entries) = std::fs::read_dir(run_dir(store_dir)) else {
        return Vec::new();
    };
    let mut services: Vec<Service> = entries
        .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
        .filter_map(|bytes| serde_json::from_slice::<Record>(&bytes).ok())
        .filter(|r| is_alive(r.pid))
        .map(|r| r.service)
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    services
}

fn run_dir(store_dir: &Path) -> PathBuf {
    store_dir.join("local").join("run")
}

/// Whether `pid` is a live `kith` process (a dead one's pid may have been reused).
fn is_alive(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmd| cmd.windows(4).any(|w| w == b"kith"))
}
