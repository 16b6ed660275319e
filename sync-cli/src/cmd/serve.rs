//! `kith serve SERVICE`: run one service in the foreground.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use clap::{Args, Subcommand};
use kith_calendar::Calendars;
use kith_contacts::AddressBooks;
use kith_dav::{Dav, server};
use kith_identity::dns::{Server, net};
use kith_identity::link::Credentials;
use kith_identity::{Provider, Site, keys, local};
use kith_mail::queue;
use kith_mail::smtp::{self, server::Tls};
use kith_mail::{Accounts, imap};

use crate::context::Context;
use crate::running::{self, Registration};
use kith_identity::sync_service;

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
    /// CalDAV calendars over HTTPS, for DAVx5, Thunderbird, Apple Calendar, vdirsyncer
    Calendar(Calendar),
    /// Mail: inbound SMTP for the zone's domain (STARTTLS), submission for the user's
    /// clients with the outbound queue, and IMAP over TLS, for the accounts of `kith user add`
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

/// `kith serve calendar`.
#[derive(Args, Debug)]
pub struct Calendar {
    /// Address to listen on [default: `calendar_listen` in kith.toml, else 127.0.0.1 on a
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
    /// Address for submission with STARTTLS, where the user's clients send (RFC 6409)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:587")]
    pub submission: SocketAddr,
    /// Address for submission over implicit TLS (RFC 8314)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:465")]
    pub submissions: SocketAddr,
    /// Address for IMAP over TLS [default: `imap_listen` in kith.toml, else 127.0.0.1
    /// on a free port; 993 is what clients expect]
    #[arg(long, value_name = "ADDR")]
    pub imap: Option<SocketAddr>,
    /// The largest message accepted, in MiB
    #[arg(long, value_name = "MIB", default_value_t = 50)]
    pub max_size: usize,
    /// Name server for the MX lookups of outbound mail (repeatable) [default: the system's]
    #[arg(long, value_name = "ADDR")]
    pub resolver: Vec<SocketAddr>,
    /// The port other domains' mail servers take mail on
    #[arg(long, value_name = "PORT", default_value_t = 25)]
    pub outbound_port: u16,
    /// Hours a message may wait in the outbound queue before it is returned to its sender
    #[arg(long, value_name = "HOURS", default_value_t = 120)]
    pub expire_hours: u64,
    /// Days a received message's marker is kept, so a resend within them is dropped
    #[arg(long, value_name = "DAYS", default_value_t = 7)]
    pub delivered_days: u32,
}

impl Mail {
    /// The mail service with its defaults, every port picked free on `ip`.
    pub fn on(ip: IpAddr) -> Mail {
        let any = SocketAddr::new(ip, 0);
        Mail {
            smtp: any,
            submission: any,
            submissions: any,
            imap: None,
            max_size: 50,
            resolver: Vec::new(),
            outbound_port: 25,
            expire_hours: 120,
            delivered_days: 7,
        }
    }
}

impl Serve {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let mut suite = Suite::new()?;
        match &self.service {
            Service::Dns(dns) => suite.dns(ctx, dns)?,
            Service::Sync(sync) => suite.sync(ctx, sync.listen)?,
            Service::Mail(mail) => suite.mail(ctx, mail)?,
            Service::Contacts(contacts) => suite.contacts(ctx, contacts)?,
            Service::Calendar(calendar) => suite.calendar(ctx, calendar)?,
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
        let listen = self.listen.or(ctx.config.contacts_listen);
        start_dav(ctx, listen, Arc::new(AddressBooks)).await
    }
}

impl Calendar {
    /// Starts serving calendars over HTTPS with the `dav` service certificate.
    pub async fn start(&self, ctx: &Context) -> Result<server::Running> {
        let listen = self.listen.or(ctx.config.calendar_listen);
        start_dav(ctx, listen, Arc::new(Calendars::default())).await
    }
}

/// Serves one kind of DAV collection on `listen` (default: 127.0.0.1, a free port).
async fn start_dav(
    ctx: &Context,
    listen: Option<SocketAddr>,
    kind: Arc<dyn kith_dav::CollectionKind>,
) -> Result<server::Running> {
    let listen = listen.unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    let tls = dav_tls(ctx, listen.ip())?;
    let dav = Arc::new(Dav::new(kith_dav::Config {
        store: ctx.store.clone(),
        branch: ctx.branch().to_string(),
        author: ctx.author(),
        kinds: vec![kind],
    }));
    server::start(dav, tls, listen)
        .await
        .with_context(|| format!("listening on {listen}"))
}

/// The DAV services' TLS config. With the root key on this replica, the `dav` key gets a
/// fresh certificate that also names the loopback and listening addresses (so clients
/// can verify `https://127.0.0.1:PORT/` against the root; the key, and so the zone's
/// TLSA records, stay the same); otherwise the stored `dav` certificate is used.
/// The zone's DKIM signer, when this replica holds the key (the one that made the zone).
fn dkim(ctx: &Context, domain: &str) -> Result<Option<Arc<queue::Dkim>>> {
    let Some(pem) = local::Local::new(&ctx.dir).read(local::DKIM_KEY)? else {
        tracing::warn!("no DKIM key on this replica: outbound mail goes unsigned");
        return Ok(None);
    };
    let pem = String::from_utf8_lossy(&pem);
    let signer = queue::Dkim::from_pem(&pem, domain, kith_identity::enroll::DKIM_SELECTOR)?;
    Ok(Some(Arc::new(signer)))
}

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
        self.register(ctx, "dns", vec![format!("dns://{}", running.addr)])?;
        self.dns = Some(running);
        Ok(())
    }

    /// Starts the sync service.
    pub fn sync(&mut self, ctx: &Context, listen: SocketAddr) -> Result<()> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        let running = sync_service::start(site, &ctx.author(), listen)
            .context("starting the sync service (it needs this replica's sync key)")?;
        let url = crate::remote::Url {
            host: running.addr.ip().to_string(),
            port: running.addr.port(),
        };
        self.register(ctx, "sync", vec![url.to_string()])?;
        self.sync = Some(running);
        Ok(())
    }

    /// Starts CardDAV.
    pub fn contacts(&mut self, ctx: &Context, contacts: &Contacts) -> Result<()> {
        let running = self.runtime.block_on(contacts.start(ctx))?;
        self.register(ctx, "contacts", vec![format!("https://{}/", running.addr)])?;
        self.dav.push(running);
        Ok(())
    }

    /// Starts CalDAV.
    pub fn calendar(&mut self, ctx: &Context, calendar: &Calendar) -> Result<()> {
        let running = self.runtime.block_on(calendar.start(ctx))?;
        self.register(ctx, "calendar", vec![format!("https://{}/", running.addr)])?;
        self.dav.push(running);
        Ok(())
    }

    /// Starts SMTP for the zone's domain (inbound and submission) and the outbound queue.
    pub fn mail(&mut self, ctx: &Context, mail: &Mail) -> Result<()> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        let origin = site.origin()?.to_string();
        let domain = origin.trim_end_matches('.').to_ascii_lowercase();
        let credentials = Credentials::of_service(&site, "mail", &ctx.author())?;
        let host = format!("mail.{domain}");
        let tls = credentials.public_server_config()?;
        let accounts: Arc<dyn Accounts> = Arc::new(kith_dav::accounts::password_check(
            ctx.store.clone(),
            ctx.branch().to_string(),
        ));
        let service = smtp::server::Service {
            store: ctx.store.clone(),
            branch: ctx.branch().to_string(),
            author: format!("{}/mail", ctx.author()),
            tls: Arc::clone(&tls),
            config: smtp::Config {
                host: host.clone(),
                domains: vec![domain.clone()],
                max_size: mail.max_size << 20,
                offer_tls: true,
                mode: smtp::Mode::Inbound,
            },
            accounts: Arc::clone(&accounts),
            dkim: dkim(ctx, &domain)?,
            checker: Some(Arc::new(
                smtp::auth::Checker::new(&mail.resolver, self.runtime.handle().clone(), &host)
                    .map_err(|e| anyhow!(e))?,
            )),
            writer: Arc::new(smtp::writer::Writer::spawn(
                ctx.store.clone(),
                ctx.branch().to_string(),
                format!("{}/mail", ctx.author()),
                smtp::writer::Retention {
                    days: mail.delivered_days,
                    ..Default::default()
                },
            )?),
        };
        let mut submission = service.clone();
        submission.config.mode = smtp::Mode::Submission;
        let listen = |service, addr: SocketAddr, tls| {
            smtp::server::start(service, addr, tls).with_context(|| format!("listening on {addr}"))
        };
        let inbound = listen(service, mail.smtp, Tls::Upgrade)?;
        let starttls = listen(submission.clone(), mail.submission, Tls::Upgrade)?;
        let implicit = listen(submission, mail.submissions, Tls::Implicit)?;
        self.runtime.spawn(
            queue::Sender {
                store: ctx.store.clone(),
                branch: ctx.branch().to_string(),
                author: format!("{}/mail", ctx.author()),
                host,
                resolvers: mail.resolver.clone(),
                port: mail.outbound_port,
                expire_after: Duration::from_secs(mail.expire_hours * 3600),
            }
            .run(),
        );
        let listen = mail
            .imap
            .or(ctx.config.imap_listen)
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
        let config = imap::Config {
            store: ctx.store.clone(),
            branch: ctx.branch().to_string(),
            author: format!("{}/imap", ctx.author()),
            accounts,
        };
        let imaps = imap::server::start(config, tls, listen)
            .with_context(|| format!("listening on {listen}"))?;
        self.register(
            ctx,
            "mail",
            vec![
                format!("smtp://{inbound}"),
                format!("submission://{starttls}"),
                format!("submissions://{implicit}"),
                format!("imaps://{imaps}"),
            ],
        )
    }

    fn register(&mut self, ctx: &Context, name: &str, endpoints: Vec<String>) -> Result<()> {
        let service = running::Service {
            name: name.into(),
            endpoints,
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
pub fn announce(list: &[running::Service]) {
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
