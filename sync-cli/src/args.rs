//! The command line's grammar: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand};

use crate::cmd;

/// Kith keeps one person's mail, contacts and calendar in a versioned store on hardware
/// they own, and serves them to the apps they already use.
#[derive(Parser, Debug)]
#[command(name = "kith", version, propagate_version = true, max_term_width = 100)]
#[command(
    after_help = "Start with `kith init`, then `kith import ~/contacts /contacts/me/default` \
or `kith up`. Every command has its own --help."
)]
pub struct Args {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(ClapArgs, Debug, Clone)]
pub struct Global {
    /// The store folder, or `disk:FILE` for a disk image made by `kith disk write`
    /// [default: $KITH_STORE, else ~/.local/share/kith]
    #[arg(long, global = true, env = "KITH_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// The branch to read and change
    #[arg(long, global = true, default_value = "main", value_name = "NAME")]
    pub branch: String,
    /// Print data as JSON (one document on stdout)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug; RUST_LOG overrides)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    Init(cmd::init::Init),
    Import(cmd::import::Import),
    Export(cmd::export::Export),
    Put(cmd::file::Put),
    Get(cmd::file::Get),
    Rm(cmd::file::Rm),
    Ls(cmd::file::Ls),
    Log(cmd::log::Log),
    Diff(cmd::diff::Diff),
    Branch(cmd::branch::Branch),
    Merge(cmd::merge::Merge),
    Conflicts(cmd::merge::Conflicts),
    Resolve(cmd::merge::Resolve),
    Fsck(cmd::fsck::Fsck),
    Gc(cmd::gc::Gc),
    Up(cmd::up::Up),
    Status(cmd::status::Status),
    Device(cmd::device::Device),
    Identity(cmd::identity::Identity),
    Serve(cmd::serve::Serve),
    Clone(cmd::clone::Clone),
    Remote(cmd::remote::Remote),
    Fetch(cmd::sync::Fetch),
    Push(cmd::sync::Push),
    Sync(cmd::sync::Sync),
    Build(cmd::build::Build),
    Run(cmd::run::Run),
    User(cmd::user::User),
    Disk(cmd::disk::Disk),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Catches clashing argument ids (a command's positional named like a global option)
    /// and other definition mistakes clap only reports at run time.
    #[test]
    fn the_grammar_is_consistent() {
        super::Args::command().debug_assert();
    }
}
