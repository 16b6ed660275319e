//! `kith build SERVICE`: build a service's unikernel image.
//!
//! The build itself is the unikernel folder's own scripts (the same ones its tests run):
//! `scripts/install-toolchain.sh ARCH` installs Debian's rustc 1.96 with the std sources,
//! the linker and QEMU when they are missing, and `scripts/build-image.sh PACKAGE ARCH`
//! compiles the program for `ARCH-unknown-hermit` with the crate patches applied and
//! links it with kith-unikernel. The unikernel folder is `$KITH_UNIKERNEL_DIR`, else the
//! `unikernel/` folder of the source tree this binary was built from. The image is then
//! packed ([`pack`]): compressed, as an `Image.gz` on aarch64 and behind the kernel's
//! unpacking stub on x86_64.

mod pack;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

/// Build a service's unikernel image: one bootable VM holding just that service.
///
/// The first build installs Debian's rustc 1.96 toolchain packages when they are
/// missing (root or sudo needed) and compiles std for the unikernel target, which takes
/// several minutes on two cores; later builds reuse it. The image boots with `kith run`.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
kith build --example https -o https.img   the tokio + hyper + rustls demo server\n  \
kith run https.img --forward 8443:443 -- 443\n\n\
The unikernel sources are found in $KITH_UNIKERNEL_DIR, else in the unikernel/ folder \
of the source tree this kith binary was built from.")]
pub struct Build {
    /// The service to build
    #[arg(
        value_enum,
        required_unless_present = "example",
        conflicts_with = "example"
    )]
    pub service: Option<Service>,
    /// Build a program from unikernel/examples/ instead (hello, https, echo, disk, connect)
    #[arg(long, value_name = "NAME")]
    pub example: Option<String>,
    /// The machine the image is for
    #[arg(long, value_enum, default_value = "x86_64")]
    pub arch: Arch,
    /// Where to write the image [default: ./kith-NAME-ARCH.img]
    #[arg(short, long, value_name = "IMAGE")]
    pub output: Option<PathBuf>,
    /// Write the image as linked (an ELF) instead of packed: compressed, as an aarch64
    /// Image.gz the boot loader unpacks, or an x86_64 ELF whose small stub unpacks
    /// the kernel (LZ4) at boot
    #[arg(long)]
    pub unpacked: bool,
}

/// The services of the suite (ARCHITECTURE.md, "The command line").
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// The authoritative DNS server of the user's zone
    Dns,
    /// The store's sync endpoint
    Sync,
    /// CardDAV
    Contacts,
    /// CalDAV
    Calendar,
    /// SMTP and IMAP
    Mail,
}

/// The machines an image can be built for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// PVH ELF for QEMU microvm/q35, Firecracker, cloud-hypervisor
    #[value(name = "x86_64")]
    X86_64,
    /// ELF for QEMU `-M virt`
    Aarch64,
}

impl Arch {
    /// The name in target triples and script arguments.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl Service {
    /// The unikernel package of the service's image.
    pub fn package(self) -> &'static str {
        match self {
            Service::Dns => "kith-dns-image",
            Service::Sync => "kith-sync-image",
            Service::Contacts => "kith-contacts-image",
            Service::Calendar => "kith-calendar-image",
            Service::Mail => "kith-mail-image",
        }
    }
}

impl Build {
    /// Builds the image and prints its path and size.
    pub fn run(&self) -> Result<ExitCode> {
        let package = self.package()?;
        let dir = unikernel_dir()?;
        if let Some(example) = &self.example {
            check_example(&dir, example)?;
        }
        let output = self.output.clone().unwrap_or_else(|| {
            PathBuf::from(format!("kith-{}-{}.img", self.name(), self.arch.name()))
        });
        install_toolchain(self.arch)?;
        let (size, linked) = build_image(&package, self.arch, !self.unpacked, &output)?;
        if !self.unpacked {
            eprintln!("kith: packed from {} KB as linked", linked.div_ceil(1000));
        }
        println!("{} ({} KB)", output.display(), size.div_ceil(1000));
        Ok(ExitCode::SUCCESS)
    }

    /// The unikernel workspace package to build.
    fn package(&self) -> Result<String> {
        match (&self.service, &self.example) {
            (Some(service), _) => Ok(service.package().to_string()),
            (None, Some(example)) => Ok(example.clone()),
            (None, None) => unreachable!("clap requires a service or --example"),
        }
    }

    /// The service's or example's name, for the default image name.
    fn name(&self) -> String {
        match (&self.service, &self.example) {
            (Some(service), _) => service_name(*service),
            (None, Some(example)) => example.clone(),
            (None, None) => unreachable!("clap requires a service or --example"),
        }
    }
}

/// Installs the unikernel toolchain for `arch` (Debian's packages) when it is missing.
pub fn install_toolchain(arch: Arch) -> Result<()> {
    eprintln!("kith: checking the unikernel toolchain for {}", arch.name());
    script(&unikernel_dir()?, "install-toolchain.sh", &[arch.name()]).map(drop)
}

/// Builds the unikernel package `package` for `arch` (the toolchain installed), packs
/// it unless told not to, writes it to `output` and returns its size and the size it
/// had as linked.
pub fn build_image(
    package: &str,
    arch: Arch,
    packed: bool,
    output: &Path,
) -> Result<(usize, usize)> {
    let arch = arch.name();
    eprintln!("kith: building {package} for {arch}-unknown-hermit (minutes the first time)");
    let started = Instant::now();
    let built = script(&unikernel_dir()?, "build-image.sh", &[package, arch])?;
    let linked = std::fs::read(built.trim())
        .with_context(|| format!("reading the built image {}", built.trim()))?;
    let linked_len = linked.len();
    let image = match packed {
        true => pack::pack(&linked).with_context(|| format!("packing {}", built.trim()))?,
        false => linked,
    };
    std::fs::write(output, &image)
        .with_context(|| format!("writing the image to {}", output.display()))?;
    tracing::info!(seconds = started.elapsed().as_secs(), "image built");
    Ok((image.len(), linked_len))
}

/// Fails, listing the examples, unless `dir/examples/NAME` is a crate.
fn check_example(dir: &Path, name: &str) -> Result<()> {
    let examples = dir.join("examples");
    if !examples.join(name).join("Cargo.toml").is_file() {
        bail!(
            "no example named {name:?} in {}; the examples are: {}",
            examples.display(),
            list_examples(&examples).join(", ")
        );
    }
    Ok(())
}

/// The service's name on the command line (`dns`, `contacts`, ...).
pub fn service_name(service: Service) -> String {
    service
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// The unikernel folder: `$KITH_UNIKERNEL_DIR`, else the source tree's `unikernel/`.
pub fn unikernel_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("KITH_UNIKERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../unikernel"));
    if !dir.join("scripts/build-image.sh").is_file() {
        bail!(
            "no unikernel sources at {}; set KITH_UNIKERNEL_DIR to the unikernel/ folder \
of a Kith checkout",
            dir.display()
        );
    }
    Ok(dir.canonicalize()?)
}

fn list_examples(examples: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(examples)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Runs `unikernel/scripts/NAME ARGS...` with stderr shown, returning its stdout.
fn script(dir: &Path, name: &str, args: &[&str]) -> Result<String> {
    let path = dir.join("scripts").join(name);
    tracing::debug!(script = %path.display(), ?args, "running");
    let out = Command::new(&path)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({})",
            path.display(),
            args.join(" "),
            out.status
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
