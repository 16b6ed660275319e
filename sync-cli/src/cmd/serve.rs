//! `kith serve SERVICE`: run one service in the foreground.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use clap::{Args, Subcommand};
use kith_contacts::AddressBooks;
use kith_dav::{Dav, server};
use kith_identity::dns::{Server, net};
use kith_identity::link::Credentials;
use kith_identity::{Provider, Site, keys, local};
use kith_mail::{imap, smtp};

use crate::context::Context;
use crate::running::{self, Registration};
use crate::sync_service;

/// Run one service in the foreground until interrupted.
#[derive(Args, Debug)]
pub struct Serve {
    #[command(subcommand)]
    pub service: Service,
}

/// The services.
#[derive(Subcommand, Debug)]
pub enum Service {
    /// The authoritative DNS server of the user's zone (UDP and TCP)
    Dns(Dns),
    /// The sync service other replicas fetch from and push to (mutual TLS)
    Sync(Sync),
    /// CardDAV address books over HTTPS, for DAVx5, Thunderbird, Apple Contacts, vdirsyncer
    Contacts(Contacts),
    /// Mail: inbound SMTP for the zone's domain, with STARTTLS, and IMAP over TLS for
    /// the accounts of `kith user add` (submission arrives later)
    Mail(Mail),
}

/// `kith serve contacts`.
#[derive(Args, Debug)]
pub struct Contacts {
    /// Address to listen on [default: `contacts_listen` in kith.toml, else 127.0.0.1 on a
    /// free port]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

/// `kith serve dns`.
#[derive(Args, Debug)]
pub struct Dns {
    /// Address for UDP and TCP (port 0 picks a free one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:53")]
    pub listen: SocketAddr,
    /// A secondary to NOTIFY when the zone changes (repeatable)
    #[arg(long, value_name = "ADDR")]
    pub notify: Vec<SocketAddr>,
    /// UDP responses a second per client prefix (0: no rate limit)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub rrl_rate: u32,
    /// Most TCP connections open at once
    #[arg(long, value_name = "N", default_value_t = 128)]
    pub tcp_max: usize,
    /// Seconds a TCP connection may sit idle
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub tcp_idle: u64,
}

/// `kith serve sync`.
#[derive(Args, Debug)]
pub struct Sync {
    /// Address for the sync service (port 0 picks a free one; 7447 is the zone's
    /// `_kith-sync._tcp` port)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7447")]
    pub listen: SocketAddr,
}

/// `kith serve mail`.
#[derive(Args, Debug)]
pub struct Mail {
    /// Address for inbound SMTP (port 0 picks a free one; 25 is what other servers use)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:25")]
    pub smtp: SocketAddr,
    /// Address for IMAP over TLS [default: `imap_listen` in kith.toml, else 127.0.0.1
    /// on a free port; 993 is what clients expect]
    #[arg(long, value_name = "ADDR")]
    pub imap: Option<SocketAddr>,
    /// The largest message accepted, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub max_size: usize,
}

impl Serve {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let mut suite = Suite::new()?;
        match &self.service {
            Service::Dns(dns) => suite.dns(ctx, dns)?,
            Service::Sync(sync) => suite.sync(ctx, sync.listen)?,
            Service::Mail(mail) => suite.mail(ctx, mail)?,
            Service::Contacts(contacts) => suite.contacts(ctx, contacts)?,
        }
        suite.run(ctx)
    }
}

impl Dns {
    /// The DNS service with its defaults, listening on `listen`.
    pub fn on(listen: SocketAddr) -> Dns {
        Dns {
            listen,
            notify: Vec::new(),
            rrl_rate: 1000,
            tcp_max: 128,
            tcp_idle: 10,
        }
    }

    fn config(&self) -> net::Config {
        net::Config {
            listen: self.listen,
            tcp_max_connections: self.tcp_max,
            tcp_idle: Duration::from_secs(self.tcp_idle),
            rrl: (self.rrl_rate > 0).then_some((self.rrl_rate, self.rrl_rate * 2, 2)),
            notify: self.notify.clone(),
        }
    }
}

impl Contacts {
    /// Starts serving address books over HTTPS with the `dav` service certificate.
    pub async fn start(&self, ctx: &Context) -> Result<server::Running> {
        let listen = self
            .listen
            .or(ctx.config.contacts_listen)
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let tls = dav_tls(ctx, listen.ip())?;
        let dav = Arc::new(Dav::new(kith_dav::Config {
            store: ctx.store.clone(),
            branch: ctx.branch().to_string(),
            author: ctx.author(),
            kinds: vec![Arc::new(AddressBooks)],
        }));
        server::start(dav, tls, listen)
            .await
            .with_context(|| format!("listening on {listen}"))
    }
}

/// The DAV services' TLS config. With the root key on this replica, the `dav` key gets a
/// fresh certificate that also names the loopback and listening addresses (so clients
/// can verify `https://127.0.0.1:PORT/` against the root; the key, and so the zone's
/// TLSA records, stay the same); otherwise the stored `dav` certificate is used.
fn dav_tls(ctx: &Context, ip: IpAddr) -> Result<Arc<kith_dav::tls::ServerConfig>> {
    let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
    let origin = site.origin().map_err(|_| {
        anyhow!("this store has no identity, so no certificate to serve with: run `kith init --zone NAME` first")
    })?;
    let zone = origin.to_string().trim_end_matches('.').to_string();
    let root_pem = site.root_cert()?;
    let (cert, key) = match site.local.read(local::ROOT_KEY)? {
        Some(root_key) => {
            let mut names = vec![
                format!("dav.{zone}"),
                format!("{}.{zone}", ctx.author()),
                "localhost".into(),
                "127.0.0.1".into(),
                "::1".into(),
            ];
            if !ip.is_unspecified() && !names.contains(&ip.to_string()) {
                names.push(ip.to_string());
            }
            let root_key = String::from_utf8(root_key)?;
            let key = site
                .local
                .require(&local::service_key("dav"), "the dav service key")?;
            let key = keys::key_from_pem(&String::from_utf8(key)?)?;
            let issued = keys::issue_for(&root_pem, &root_key, &names, key, &Provider::system())?;
            (issued.cert_pem, issued.key_pem)
        }
        None => {
            let tree = ctx.store.head_tree(ctx.branch())?;
            let cert = ctx
                .store
                .get(&tree, &kith_identity::enroll::service_path("dav"))?
                .ok_or_else(|| anyhow!("the store has no dav service certificate"))?;
            let key = site
                .local
                .require(&local::service_key("dav"), "the dav service key")?;
            (String::from_utf8(cert)?, String::from_utf8(key)?)
        }
    };
    Ok(kith_dav::tls::server_config(
        &format!("{cert}{root_pem}"),
        &key,
    )?)
}

/// The accounts of `kith user add`, read from the branch head at each login.
struct StoreAccounts {
    store: kith_store::Store,
    branch: String,
    verifier: kith_dav::accounts::Verifier,
}

impl imap::Accounts for StoreAccounts {
    fn verify(&self, user: &str, password: &str) -> bool {
        let Ok(root) = self.store.head_tree(&self.branch) else {
            return false;
        };
        self.verifier
            .check(&self.store, &root, user, password)
            .unwrap_or(false)
    }
}

/// Services started in this process, each registered for `kith status` until stopped.
pub struct Suite {
    runtime: tokio::runtime::Runtime,
    dns: Option<net::Running>,
    sync: Option<sync_service::Running>,
    dav: Vec<server::Running>,
    services: Vec<running::Service>,
    registrations: Vec<Registration>,
}

impl Suite {
    /// No services yet.
    pub fn new() -> Result<Suite> {
        Ok(Suite {
            runtime: tokio::runtime::Runtime::new()?,
            dns: None,
            sync: None,
            dav: Vec::new(),
            services: Vec::new(),
            registrations: Vec::new(),
        })
    }

    /// Starts the zone's authoritative DNS server.
    pub fn dns(&mut self, ctx: &Context, dns: &Dns) -> Result<()> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        site.origin()?;
        let server = Arc::new(Server::open(site)?);
        let running = self
            .runtime
            .block_on(net::start(server, dns.config()))
            .with_context(|| format!("listening on {}", dns.listen))?;
        self.register(ctx, "dns", format!("dns://{}", running.addr))?;
        self.dns = Some(running);
        Ok(())
    }

    /// Starts the sync service.
    pub fn sync(&mut self, ctx: &Context, listen: SocketAddr) -> Result<()> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        let running = sync_service::start(site, &ctx.author(), listen)?;
        let url = crate::remote::Url {
            host: running.addr.ip().to_string(),
            port: running.addr.port(),
        };
        self.register(ctx, "sync", url.to_string())?;
        self.sync = Some(running);
        Ok(())
    }

    /// Starts CardDAV.
    pub fn contacts(&mut self, ctx: &Context, contacts: &Contacts) -> Result<()> {
        let running = self.runtime.block_on(contacts.start(ctx))?;
        self.register(ctx, "contacts", format!("https://{}/", running.addr))?;
        self.dav.push(running);
        Ok(())
    }

    /// Starts inbound SMTP for the zone's domain.
    pub fn mail(&mut self, ctx: &Context, mail: &Mail) -> Result<()> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        let origin = site.origin()?.to_string();
        let domain = origin.trim_end_matches('.').to_ascii_lowercase();
        let credentials = Credentials::of_service(&site, "mail", &ctx.author())?;
        let tls = credentials.public_server_config()?;
        let service = smtp::server::Service {
            store: ctx.store.clone(),
            branch: ctx.branch().to_string(),
            author: format!("{}/mail", ctx.author()),
            tls: Arc::clone(&tls),
            config: smtp::Config {
                host: format!("mail.{domain}"),
                domains: vec![domain],
                max_size: mail.max_size << 20,
                offer_tls: true,
            },
        };
        let addr = smtp::server::start(service, mail.smtp)
            .with_context(|| format!("listening on {}", mail.smtp))?;
        self.register(ctx, "mail", format!("smtp://{addr}"))?;
        let listen = mail
            .imap
            .or(ctx.config.imap_listen)
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let config = imap::Config {
            store: ctx.store.clone(),
            branch: ctx.branch().to_string(),
            author: format!("{}/imap", ctx.author()),
            accounts: Arc::new(StoreAccounts {
                store: ctx.store.clone(),
                branch: ctx.branch().to_string(),
                verifier: kith_dav::accounts::Verifier::default(),
            }),
        };
        let addr = imap::server::start(config, tls, listen)
            .with_context(|| format!("listening on {listen}"))?;
        self.register(ctx, "imap", format!("imaps://{addr}"))
    }

    fn register(&mut self, ctx: &Context, name: &str, endpoint: String) -> Result<()> {
        let service = running::Service {
            name: name.into(),
            endpoints: vec![endpoint],
        };
        self.registrations
            .push(Registration::new(&ctx.dir, service.clone())?);
        self.services.push(service);
        Ok(())
    }

    /// Prints the endpoints, serves until SIGINT or SIGTERM, then stops everything.
    pub fn run(self, ctx: &Context) -> Result<ExitCode> {
        // Whoever started us may stop reading once it has the endpoints: that is fine.
        if ctx.global.json {
            let _ = crate::output::print_json(&serde_json::json!({ "services": self.services }));
        } else {
            announce(&self.services);
        }
        self.runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
            if let Some(dns) = self.dns {
                dns.stop().await;
            }
            for dav in self.dav {
                dav.stop().await;
            }
            anyhow::Ok(())
        })?;
        if let Some(sync) = self.sync {
            sync.stop();
        }
        drop(self.registrations);
        Ok(ExitCode::SUCCESS)
    }
}

/// Prints every endpoint, one a line, in one write; a reader that stopped listening
/// (a closed pipe) does not stop the services.
fn announce(list: &[running::Service]) {
    let text: String = list
        .iter()
        .flat_map(|s| &s.endpoints)
        .map(|e| format!("{e}\n"))
        .collect();
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        tracing::debug!("printing the endpoints: {e}");
    }
}
