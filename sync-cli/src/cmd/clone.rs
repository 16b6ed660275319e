//! `kith clone`: a new replica of the user's store, from another replica's sync service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use kith_identity::link::Credentials;
use kith_identity::local::{self, Local};
use kith_identity::resolve::Resolver;
use kith_identity::{Bundle, Revoked};
use kith_store::{Scope, Store};

use crate::args::Global;
use crate::context::{Config, Context, Remote, store_dir};
use crate::remote::{self, Url};

/// Make a new replica (a laptop, a cloud VM, a service's own store) from another
/// replica's sync service, and remember that one as the remote `origin`.
///
/// A new device joins with the bundle `kith device add NAME` wrote on a replica holding
/// the root key: it carries the device's certificate and key, the user's root and where
/// the zone's name servers are. Without URL, the sync service is found through the
/// zone's `_kith-sync._tcp` SRV record. Without --bundle, the new replica uses the
/// identity of the replica named by --store (another store of this same device).
///
/// Examples:
///   kith clone --bundle laptop.kith-bundle.json kith://board.lan:7447 ~/kith
///   kith clone --bundle laptop.kith-bundle.json --prefix /contacts/ kith://board.lan ~/kith-contacts
#[derive(Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct Clone {
    /// The enrolment bundle from `kith device add NAME`
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<PathBuf>,
    /// Hold only this prefix, e.g. /contacts/ (repeatable; /identity/ always comes too)
    #[arg(long = "prefix", value_name = "P")]
    pub prefixes: Vec<String>,
    /// The sync service, kith://HOST[:PORT] [default: the zone's SRV record]
    pub url: Option<String>,
    /// Where the new replica goes [default: --store, $KITH_STORE, else ~/.local/share/kith]
    pub dir: Option<PathBuf>,
}

/// Who the new replica is: its device name and the secrets it is given.
struct Joining {
    device: String,
    credentials: Credentials,
    files: Vec<(String, Vec<u8>)>,
    bundle: Option<Bundle>,
}

impl Clone {
    pub fn run(&self, global: &Global) -> Result<ExitCode> {
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None if self.bundle.is_none() => bail!(
                "without --bundle the new replica borrows the identity of --store's replica, so name the new DIR"
            ),
            None => store_dir(global)?,
        };
        if Store::open(&dir).is_ok() {
            bail!(
                "a Kith store exists at {} already; `kith --store {} sync` brings it up to date",
                dir.display(),
                dir.display()
            );
        }
        let joining = self.joining(global)?;
        let url = self.url(&joining)?;
        let store = self.create(&dir)?;
        let local = Local::new(&dir);
        for (name, bytes) in &joining.files {
            local.write(name, bytes)?;
        }
        let mut config = Config {
            device: Some(joining.device.clone()),
            ..Config::default()
        };
        config.remotes.insert(
            "origin".into(),
            Remote {
                url: url.to_string(),
            },
        );
        config.save(&dir)?;
        let fetched = remote::Link::open(&url, &joining.credentials)
            .and_then(|mut link| link.fetch(&store, "origin"))
            .with_context(|| {
                let dir = dir.display();
                format!("cloning {url}: the replica at {dir} is set up; `kith --store {dir} sync` finishes the copy")
            })?;
        for (branch, head) in &fetched.branches {
            let head: kith_store::Hash = head.parse()?;
            if store.head(branch)?.is_none() {
                store.set_branch(branch, None, Some(head))?;
            }
        }
        if global.json {
            crate::output::print_json(&serde_json::json!({
                "store": dir, "device": joining.device, "origin": url.to_string(),
                "scope": store.scope().list(), "fetched": fetched,
            }))?;
        } else {
            crate::cmd::sync::print_fetched("origin", &fetched);
            println!(
                "cloned {url} into {} as device {} (holding {})",
                dir.display(),
                joining.device,
                store.scope()
            );
        }
        Ok(ExitCode::SUCCESS)
    }

    fn create(&self, dir: &std::path::Path) -> Result<Store> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        if self.prefixes.is_empty() {
            return Ok(Store::create(dir)?);
        }
        let with_identity = self
            .prefixes
            .iter()
            .map(String::as_str)
            .chain(["/identity"]);
        Ok(Store::create_partial(dir, Scope::prefixes(with_identity)?)?)
    }

    fn joining(&self, global: &Global) -> Result<Joining> {
        match &self.bundle {
            Some(path) => from_bundle(path),
            None => from_replica(global),
        }
    }

    fn url(&self, joining: &Joining) -> Result<Url> {
        if let Some(url) = &self.url {
            return Url::parse(url);
        }
        let Some(bundle) = &joining.bundle else {
            bail!("give the sync service's URL (kith://HOST:PORT)");
        };
        find_sync_service(bundle)
    }
}

fn from_bundle(path: &std::path::Path) -> Result<Joining> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let bundle: Bundle = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a Kith bundle from `kith device add`",
            path.display()
        )
    })?;
    let credentials = Credentials::new(
        &bundle.root_certificate,
        &bundle.certificate,
        &bundle.key,
        Revoked::default(),
    );
    let mut files = credentials.local_files();
    files.push((
        local::tsig_key(&bundle.device),
        bundle.tsig.secret.clone().into_bytes(),
    ));
    Ok(Joining {
        device: bundle.device.clone(),
        credentials,
        files,
        bundle: Some(bundle),
    })
}

fn from_replica(global: &Global) -> Result<Joining> {
    let ctx = Context::open(global).context("reading the identity of --store's replica")?;
    let credentials = remote::credentials(&ctx)?;
    Ok(Joining {
        device: ctx.author(),
        files: credentials.local_files(),
        credentials,
        bundle: None,
    })
}

/// The sync service the zone publishes, asked of the bundle's name servers.
fn find_sync_service(bundle: &Bundle) -> Result<Url> {
    let srv = kith_identity::enroll::fqdn(&bundle.zone)?
        .prepend_label("_tcp")?
        .prepend_label("_kith-sync")?;
    for (_, addresses) in &bundle.nameservers {
        for address in addresses {
            let resolver = Resolver::new(SocketAddr::new(*address, 53));
            let Ok(endpoints) = resolver.service(&srv) else {
                continue;
            };
            if let Some((e, a)) = endpoints
                .iter()
                .find_map(|e| e.addresses.first().map(|a| (e, a)))
            {
                return Ok(Url {
                    host: a.to_string(),
                    port: e.port,
                });
            }
        }
    }
    bail!(
        "could not find {srv} through the bundle's name servers; give the sync service's URL (kith://HOST:PORT)"
    )
}
