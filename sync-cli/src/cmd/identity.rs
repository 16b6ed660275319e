//! `kith identity root-cert`: the user's root certificate, for clients to trust.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};
use kith_identity::Site;

use crate::context::Context;

/// The user's identity: its root certificate.
#[derive(Args, Debug)]
pub struct Identity {
    #[command(subcommand)]
    pub action: IdentityAction,
}

/// What to show.
#[derive(Subcommand, Debug)]
pub enum IdentityAction {
    /// Print the user's root certificate (PEM)
    RootCert,
}

impl Identity {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        let site = Site::new(ctx.store.clone(), ctx.branch(), &ctx.dir);
        match self.action {
            IdentityAction::RootCert => {
                let pem = site.root_cert()?;
                if ctx.global.json {
                    crate::output::print_json(&serde_json::json!({ "root_certificate": pem }))?;
                } else {
                    print!("{pem}");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}
