//! `kith up`: run the whole suite on the local store, as processes or (`--unikernel`)
//! as one VM image per service.

mod unikernel;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kith_identity::Site;
use kith_store::Store;

use crate::args::Global;
use crate::cmd::build::{Arch, Service};
use crate::cmd::serve::{Calendar, Contacts, Dns, Mail, Suite};
use crate::context::{Config, Context, store_dir};

/// Run Kith on this machine: open the store (creating it on first run) and serve every
/// service until interrupted (sync on its published port 7447 when free, every other
/// service on a free port); `kith status` lists their endpoints. The services are DNS,
/// sync, contacts (CardDAV), calendar (CalDAV) and mail (SMTP, submission, IMAP), once
/// the store has an identity (`kith init --zone NAME`).
///
/// With --unikernel each service runs as its own VM image instead (built with `kith
/// build`, booted with QEMU as `kith run` boots it) on a disk of its own, written from
/// this store on the first run and kept afterwards in the store's local/unikernel/
/// folder (delete NAME.raw there to write it afresh), holding that service's key and no
/// other; every port is forwarded from a free port on 127.0.0.1 (sync from 7447 when
/// free). The VMs keep their replicas in step through the sync VM, which other replicas
/// `kith clone` and `kith sync` with as with any sync service.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
kith up                                    every service as a process on this store\n  \
kith up --services dns,contacts            only these\n  \
kith up --unikernel --memory 64            every service as its own VM (QEMU)\n  \
kith status                                in another terminal: where they answer")]
pub struct Up {
    /// The address to listen on (use 0.0.0.0 or :: to serve other machines; VMs are
    /// always forwarded from 127.0.0.1)
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
    /// The services to run, comma-separated [default: all]
    #[arg(long, value_enum, value_delimiter = ',', value_name = "LIST")]
    pub services: Vec<Service>,
    /// Boot each service as its own unikernel image under QEMU
    #[arg(long)]
    pub unikernel: bool,
    /// With --unikernel: the machine the images are for (QEMU emulates another)
    #[arg(long, value_enum, default_value = "x86_64", requires = "unikernel")]
    pub arch: Arch,
    /// With --unikernel: each VM's RAM in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64, requires = "unikernel")]
    pub memory: u32,
}

/// Every service, in the order they start (DNS first: mail asks it).
const ALL: [Service; 5] = [
    Service::Dns,
    Service::Sync,
    Service::Contacts,
    Service::Calendar,
    Service::Mail,
];

impl Up {
    pub fn run(&self, global: &Global) -> Result<ExitCode> {
        let dir = store_dir(global)?;
        let (store, created) = match Store::open(&dir) {
            Ok(store) => (store, false),
            Err(kith_store::Error::NoStore(_)) => (crate::cmd::init::create(&dir, None)?, true),
            Err(e) => return Err(e.into()),
        };
        let ctx = Context {
            store,
            config: Config::load(&dir)?,
            dir,
            global: global.clone(),
        };
        let has_identity = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir)
            .origin()
            .is_ok();
        if !global.json {
            let verb = if created { "created" } else { "opened" };
            println!(
                "{verb} the Kith store in {} (device {})",
                ctx.dir.display(),
                ctx.author()
            );
        }
        if !has_identity {
            if !global.json {
                println!(
                    "no identity yet, so nothing to serve: run `kith init --zone NAME` to create one"
                );
            }
            crate::cmd::status::print(&ctx)?;
            return Ok(ExitCode::SUCCESS);
        }
        let services: Vec<Service> = ALL
            .into_iter()
            .filter(|s| self.services.is_empty() || self.services.contains(s))
            .collect();
        if self.unikernel {
            return unikernel::run(&ctx, &services, self.arch, self.memory);
        }
        let mut suite = Suite::new()?;
        for service in services {
            self.start(&mut suite, &ctx, service)?;
        }
        suite.run(&ctx)
    }

    /// Starts one service as part of this process.
    fn start(&self, suite: &mut Suite, ctx: &Context, service: Service) -> Result<()> {
        let any_port = SocketAddr::new(self.listen, 0);
        match service {
            Service::Dns => suite.dns(ctx, &Dns::on(any_port)),
            Service::Sync => {
                let published = SocketAddr::new(self.listen, crate::remote::DEFAULT_PORT);
                suite
                    .sync(ctx, published)
                    .or_else(|_| suite.sync(ctx, any_port))
            }
            Service::Contacts => {
                let listen = ctx.config.contacts_listen.or(Some(any_port));
                suite.contacts(ctx, &Contacts { listen })
            }
            Service::Calendar => {
                let listen = ctx.config.calendar_listen.or(Some(any_port));
                suite.calendar(ctx, &Calendar { listen })
            }
            Service::Mail => {
                let mut mail = Mail::on(self.listen);
                mail.imap = ctx.config.imap_listen.or(mail.imap);
                suite.mail(ctx, &mail)
            }
        }
    }
}
