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
use kith_identity::{Provider, Site, keys, local};

use crate::context::Context;
use crate::running::{self, Registration};

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
    /// CardDAV address books over HTTPS, for DAVx5, Thunderbird, Apple Contacts, vdirsyncer
    Contacts(Contacts),
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

impl Serve {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match &self.service {
            Service::Dns(dns) => serve_all(ctx, &[Starter::Dns(dns)]),
            Service::Contacts(c) => serve_all(ctx, &[Starter::Contacts(c)]),
        }
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

    /// Starts serving the zone.
    pub async fn start(&self, ctx: &Context) -> Result<Started> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        site.origin()?;
        let server = Arc::new(Server::open(site)?);
        let config = net::Config {
            listen: self.listen,
            tcp_max_connections: self.tcp_max,
            tcp_idle: Duration::from_secs(self.tcp_idle),
            rrl: (self.rrl_rate > 0).then_some((self.rrl_rate, self.rrl_rate * 2, 2)),
            notify: self.notify.clone(),
        };
        let running = net::start(server, config)
            .await
            .with_context(|| format!("listening on {}", self.listen))?;
        Ok(Started {
            service: running::Service {
                name: "dns".into(),
                endpoints: vec![format!("dns://{}", running.addr)],
            },
            stop: Stopper::Dns(running),
        })
    }
}

impl Contacts {
    /// Starts serving address books over HTTPS with the `dav` service certificate.
    pub async fn start(&self, ctx: &Context) -> Result<Started> {
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
        let running = server::start(dav, tls, listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        Ok(Started {
            service: running::Service {
                name: "contacts".into(),
                endpoints: vec![format!("https://{}/", running.addr)],
            },
            stop: Stopper::Dav(running),
        })
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

/// A running service: what `kith status` lists, and how to stop it.
pub struct Started {
    /// Its name and endpoints.
    pub service: running::Service,
    stop: Stopper,
}

enum Stopper {
    Dns(net::Running),
    Dav(server::Running),
}

impl Stopper {
    async fn stop(self) {
        match self {
            Stopper::Dns(r) => r.stop().await,
            Stopper::Dav(r) => r.stop().await,
        }
    }
}

/// A service to start.
pub enum Starter<'a> {
    /// DNS.
    Dns(&'a Dns),
    /// Contacts.
    Contacts(&'a Contacts),
}

impl Starter<'_> {
    async fn start(&self, ctx: &Context) -> Result<Started> {
        match self {
            Starter::Dns(d) => d.start(ctx).await,
            Starter::Contacts(c) => c.start(ctx).await,
        }
    }
}

/// Starts the services, registers them for `kith status`, prints their endpoints (one
/// line each, or one JSON document) and serves until SIGINT or SIGTERM.
pub fn serve_all(ctx: &Context, services: &[Starter<'_>]) -> Result<ExitCode> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let mut started = Vec::new();
        for s in services {
            started.push(s.start(ctx).await?);
        }
        let list: Vec<running::Service> = started.iter().map(|s| s.service.clone()).collect();
        let _registered = list
            .iter()
            .map(|s| Registration::new(&ctx.dir, s.clone()))
            .collect::<Result<Vec<_>>>()?;
        if ctx.global.json {
            crate::output::print_json(&serde_json::json!({ "services": list }))?;
        } else {
            announce(&list);
        }
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        for s in started {
            s.stop.stop().await;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
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
