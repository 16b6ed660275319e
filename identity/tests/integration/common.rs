//! A store with an identity, a running DNS server on a free port, and the tools.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use kith_identity::dns::Server;
use kith_identity::dns::net::{self, Config, Running};
use kith_identity::{Bundle, Site};
use kith_store::Store;

/// The test zone.
pub const ZONE: &str = "alice.home.arpa";

/// A store with zone `alice.home.arpa` (device `board`, 127.0.0.1 and ::1), device
/// `laptop` enrolled, and its DNS server on 127.0.0.1.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub site: Site,
    pub laptop: Bundle,
    pub running: Option<Running>,
    pub rt: tokio::runtime::Runtime,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture::with_config(Config::default())
    }

    pub fn with_config(mut config: Config) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        let store = Store::create(&store_dir).unwrap();
        let site = Site::new(store, "main", &store_dir);
        let addrs: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        site.create(ZONE, "board", &addrs).unwrap();
        let laptop = site.add_device("laptop", "board").unwrap();
        let server = Arc::new(Server::open(site.clone()).unwrap());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let running = rt.block_on(net::start(server, config)).unwrap();
        Fixture {
            dir,
            site,
            laptop,
            running: Some(running),
            rt,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().unwrap().addr
    }

    /// Runs kdig against the server; returns its stdout.
    pub fn kdig(&self, args: &[&str]) -> String {
        let out = Command::new("kdig")
            .arg(format!("@{}", self.addr().ip()))
            .args([
                "-p",
                &self.addr().port().to_string(),
                "+norec",
                "+timeout=2",
                "+retry=0",
            ])
            .args(args)
            .output()
            .expect("kdig runs (apt install knot-dnsutils)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Commits `text` (presentation format) as the owner file of `owner`.
    pub fn put_zone_file(&self, owner: &str, text: &str) {
        let mut tx = self.site.store.transaction("main").unwrap();
        tx.put(&format!("/identity/zone/{owner}"), text.as_bytes())
            .unwrap();
        tx.commit("board", &format!("test: set {owner}")).unwrap();
    }

    /// Waits until `check` holds (the server reloads on the store's watch).
    pub fn eventually(&self, mut check: impl FnMut() -> bool) -> bool {
        for _ in 0..50 {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The TSIG key of the laptop as `hmac-sha256:name:secret`.
    pub fn laptop_key(&self) -> String {
        let t = &self.laptop.tsig;
        format!("{}:{}:{}", t.algorithm, t.name, t.secret)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.rt.block_on(running.stop());
        }
    }
}

/// The `status:` of a kdig answer.
pub fn status(out: &str) -> &str {
    out.split("status: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .trim()
}

/// The record lines of a section (`ANSWER`, `AUTHORITY`, `ADDITIONAL`) of kdig output.
pub fn section<'a>(out: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!(";; {name} SECTION:");
    let Some(start) = out.find(&header) else {
        return Vec::new();
    };
    out[start + header.len()..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty() && !l.starts_with(";;"))
        .collect()
}

/// The header flags of kdig output (`qr aa tc ...`).
pub fn flags(out: &str) -> String {
    out.split(";; Flags: ")
        .nth(1)
        .and_then(|s| s.split(';').next())
        .unwrap_or("")
        .to_string()
}
