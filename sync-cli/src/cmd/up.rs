//! `kith up`: run the whole suite on the local store.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use kith_identity::Site;
use kith_store::Store;

use crate::args::Global;
use crate::cmd::serve::{Calendar, Contacts, Dns, Mail, Suite};
use crate::context::{Config, Context, store_dir};

/// Run Kith on this machine: open the store (creating it on first run) and serve every
/// service it is set up for until interrupted (sync on its published port 7447 when
/// free, every other service on a free port); `kith status` lists
/// their endpoints. Today that is DNS, sync, contacts (CardDAV), calendar (CalDAV) and mail (SMTP, submission, IMAP), once the store has an identity
/// (`kith init --zone NAME`); the other services arrive with their crates.
#[derive(Args, Debug)]
pub struct Up {
    /// The address to listen on (use 0.0.0.0 or :: to serve other machines)
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub listen: IpAddr,
}

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
        let mut suite = Suite::new()?;
        suite.dns(&ctx, &Dns::on(SocketAddr::new(self.listen, 0)))?;
        let published = SocketAddr::new(self.listen, crate::remote::DEFAULT_PORT);
        if suite.sync(&ctx, published).is_err() {
            suite.sync(&ctx, SocketAddr::new(self.listen, 0))?;
        }
        let contacts = Contacts {
            listen: ctx
                .config
                .contacts_listen
                .or(Some(SocketAddr::new(self.listen, 0))),
        };
        suite.contacts(&ctx, &contacts)?;
        let calendar = Calendar {
            listen: ctx
                .config
                .calendar_listen
                .or(Some(SocketAddr::new(self.listen, 0))),
        };
        suite.calendar(&ctx, &calendar)?;
        let mut mail = Mail::on(self.listen);
        mail.imap = ctx.config.imap_listen.or(mail.imap);
        suite.mail(&ctx, &mail)?;
        suite.run(&ctx)
    }
}
