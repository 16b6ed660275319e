//! `kith serve SERVICE`: run one service in the foreground.

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::{Args, Subcommand};
use kith_identity::Site;
use kith_identity::dns::{Server, net};

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
            Service::Dns(dns) => dns.run(ctx),
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

    /// Serves the zone until SIGINT or SIGTERM, registered for `kith status` meanwhile.
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
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
        let rt = tokio::runtime::Runtime::new()?;
        rt.block_on(async {
            let running = net::start(server, config)
                .await
                .with_context(|| format!("listening on {}", self.listen))?;
            let service = running::Service {
                name: "dns".into(),
                endpoints: vec![format!("dns://{}", running.addr)],
            };
            let _registered = Registration::new(&ctx.dir, service.clone())?;
            if ctx.global.json {
                crate::output::print_json(&serde_json::json!({ "services": [service] }))?;
            } else {
                println!("{}", service.endpoints[0]);
            }
            std::io::stdout().flush()?;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r?,
                _ = term.recv() => {}
            }
            running.stop().await;
            anyhow::Ok(())
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
