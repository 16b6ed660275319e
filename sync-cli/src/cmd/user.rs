//! `kith user`: the accounts the DAV services (contacts, calendar) sign users in with.

use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use kith_dav::accounts;

use crate::context::Context;

/// Accounts for the services: a name and a password (stored as an argon2 hash in the
/// store under /identity/users/, so every replica knows them).
#[derive(Args, Debug)]
pub struct User {
    #[command(subcommand)]
    pub action: UserAction,
}

/// What to do with accounts.
#[derive(Subcommand, Debug)]
pub enum UserAction {
    /// Add an account; the password is read from stdin (prompted on a terminal)
    Add(Named),
    /// List the accounts
    List,
    /// Change an account's password, read like `add`'s
    Passwd(Named),
}

/// A command on one account.
#[derive(Args, Debug)]
pub struct Named {
    /// The user name (lower-case letters, digits, `-`, `_`, `.`)
    pub name: String,
}

impl User {
    pub fn run(&self, ctx: &Context) -> Result<ExitCode> {
        match &self.action {
            UserAction::Add(u) => set(ctx, &u.name, true),
            UserAction::Passwd(u) => set(ctx, &u.name, false),
            UserAction::List => list(ctx),
        }
    }
}

fn set(ctx: &Context, name: &str, create: bool) -> Result<ExitCode> {
    accounts::check_name(name)?;
    let password = read_password(name)?;
    accounts::set_password(
        &ctx.store,
        ctx.branch(),
        name,
        &password,
        create,
        &ctx.author(),
    )?;
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({ "user": name }))?;
    } else {
        let verb = if create {
            "added"
        } else {
            "changed the password of"
        };
        println!("{verb} user {name}");
    }
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Context) -> Result<ExitCode> {
    let users = accounts::list(&ctx.store, ctx.branch())?;
    if ctx.global.json {
        crate::output::print_json(&serde_json::json!({ "users": users }))?;
    } else {
        users.iter().for_each(|u| println!("{u}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The password: prompted twice without echo on a terminal, else the first line of stdin.
fn read_password(name: &str) -> Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {name}: "))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            bail!("the passwords differ; nothing changed");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on stdin; pipe one in, e.g. `echo \"$PW\" | kith user add {name}`");
    }
    Ok(password)
}
