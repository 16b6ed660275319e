//! The mail service as its own image: opens the Kith store on the virtio-blk disk
//! `/dev/vda` (prepared on a host with `kith disk write`) and runs what `kith serve mail`
//! runs, with kith-mail's code: inbound SMTP for the zone's domain on port 25,
//! submission on 587 (STARTTLS) and 465 (TLS), IMAP over TLS on 993, and the outbound
//! queue. TLS presents the store's `mail` service certificate with the key `kith disk
//! write` put on the disk's `local/services` branch, beside the zone's DKIM key, which
//! signs outbound mail. SPF, DKIM and DMARC checks and MX lookups ask the name server
//! given as the argument (default 10.0.2.3:53, QEMU's user network); a DNS failure
//! never refuses mail. `--sync HOST:PORT` keeps the replica in step with that sync
//! service, merging flags as sets. It prints "mail: serving ZONE on ports 25 587 465 993".

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use kith_identity::enroll::{DKIM_SELECTOR, Site};
use kith_identity::local;
use kith_image::replica::Replica;
use kith_mail::smtp::server::{self, Service, Tls};
use kith_mail::smtp::{self, auth::Checker, writer};
use kith_mail::{Accounts, imap, queue};
use kith_store::{MAIN, Mergers};
/// The name server without an argument: QEMU user networking's.
const RESOLVER: &str = "10.0.2.3:53";
/// The largest message taken, as `kith serve mail` takes by default.
const MAX_SIZE: usize = 50 << 20;
/// How long an outbound message may wait before it bounces (five days).
const EXPIRE_AFTER: Duration = Duration::from_secs(120 * 3600);

fn main() -> ExitCode {
    kith_image::main("mail", serve)
}

fn serve() -> kith_image::Result<()> {
    let resolver: SocketAddr = match kith_image::argument(0) {
        Some(addr) => addr
            .parse()
            .map_err(|_| format!("not a name server address: {addr}"))?,
        None => RESOLVER.parse()?,
    };
    let (store, site) = kith_image::open_site()?;
    let origin = site.origin()?.to_string();
    let domain = origin.trim_end_matches('.').to_ascii_lowercase();
    let host = format!("mail.{domain}");
    let provider = kith_identity::verify::ed25519_provider();
    let tls = kith_image::credentials(&site, "mail")?.public_server_config_with(provider)?;
    let runtime = runtime()?;
    let accounts: Arc<dyn Accounts> = Arc::new(kith_dav::accounts::password_check(
        store.clone(),
        MAIN.to_string(),
    ));
    let inbound = Service {
        store: store.clone(),
        branch: MAIN.to_string(),
        author: "mail-image".into(),
        tls: Arc::clone(&tls),
        config: smtp::Config {
            host: host.clone(),
            domains: vec![domain.clone()],
            max_size: MAX_SIZE,
            offer_tls: true,
            mode: smtp::Mode::Inbound,
        },
        accounts: Arc::clone(&accounts),
        dkim: dkim(&site, &domain)?,
        checker: Some(Arc::new(Checker::new(&[resolver], runtime.clone(), &host)?)),
        writer: Arc::new(writer::Writer::spawn(
            store.clone(),
            MAIN.to_string(),
            "mail-image".into(),
            writer::Retention::default(),
        )?),
    };
    let mut submission = inbound.clone();
    submission.config.mode = smtp::Mode::Submission;
    server::start(inbound, any(25), Tls::Upgrade)?;
    server::start(submission.clone(), any(587), Tls::Upgrade)?;
    server::start(submission, any(465), Tls::Implicit)?;
    runtime.spawn(
        queue::Sender {
            store: store.clone(),
            branch: MAIN.to_string(),
            author: "mail-image".into(),
            host,
            resolvers: vec![resolver],
            port: 25,
            expire_after: EXPIRE_AFTER,
        }
        .run(),
    );
    let imap = imap::Config {
        store,
        branch: MAIN.to_string(),
        author: "mail-image".into(),
        accounts,
    };
    imap::server::start(imap, tls, any(993))?;
    println!("mail: serving {origin} on ports 25 587 465 993");
    let mut mergers = Mergers::new();
    kith_mail::register_mergers(&mut mergers);
    Replica {
        name: "mail",
        site,
        service: "mail",
        mergers,
    }
    .start()?;
    loop {
        std::thread::park();
    }
}

/// Every address's `port`.
fn any(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}

/// A tokio runtime driven by a thread of its own, for the DNS lookups the SMTP threads
/// wait on and for the outbound queue.
fn runtime() -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("mail-runtime".into())
        .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// The zone's DKIM signer, when `kith disk write` found the key on the replica.
fn dkim(site: &Site, domain: &str) -> kith_image::Result<Option<Arc<queue::Dkim>>> {
    let Some(pem) = site.local.read(local::DKIM_KEY)? else {
        eprintln!("mail: no DKIM key on the disk: outbound mail goes unsigned");
        return Ok(None);
    };
    let signer = queue::Dkim::from_pem(&String::from_utf8_lossy(&pem), domain, DKIM_SELECTOR)?;
    Ok(Some(Arc::new(signer)))
}
