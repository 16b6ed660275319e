//! `kith run IMAGE`: boot a unikernel image under QEMU.
//!
//! The image's ELF header says its machine: x86_64 images boot as PVH kernels on
//! `-M microvm`, aarch64 images on `-M virt`. KVM is used when it can run the guest
//! (see [`kvm_usable`]), TCG otherwise. The guest ends the VM with a status through
//! QEMU's isa-debug-exit device (x86_64) or semihosting (aarch64); both make QEMU exit
//! with `status * 2 + 1`, which this command turns back into the guest's status.

use std::io::{BufRead as _, Read as _, Write as _};
use std::net::Ipv4Addr;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::str::FromStr;

use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, ChildStderr, Command};
use tokio::signal::unix::{SignalKind, signal};

use anyhow::{Context as _, Result, bail};
use clap::{Args, ValueEnum};

use crate::cmd::build::Arch;

/// Boot a unikernel image under QEMU, with its console on this terminal.
///
/// Networking is QEMU's user mode (the guest is 10.0.2.15 and fec0::15, the host
/// 10.0.2.2 and fec0::2); each `--forward` makes a port on 127.0.0.1 reach a port of the
/// guest. With `--tap IFNAME` the guest is on that tap device instead, as on a bridge
/// (give its addresses with --kernel-options). The command exits with the guest
/// program's exit status. Stop the guest with Ctrl-C.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
kith run https.img --forward 8443:443 -- 443      then: curl -k https://127.0.0.1:8443/\n  \
kith run dns.img --disk store.img --forward udp:5353:53 --memory 32\n  \
kith run https.img --tap tap0 --kernel-options 'ip=192.168.7.15/24 gw=192.168.7.1 \
ip6=fd00:7::15/64 gw6=fd00:7::1' -- 443\n\n\
QEMU comes from Debian's qemu-system-x86 / qemu-system-arm (`kith build` installs them).")]
pub struct Run {
    /// The image, as written by `kith build`
    pub image: PathBuf,
    /// A raw disk image to attach as the guest's virtio block device
    #[arg(long, value_name = "FILE")]
    pub disk: Option<PathBuf>,
    /// The guest's RAM in MiB
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory: u32,
    /// Forward 127.0.0.1:HOST to the guest's GUEST port, TCP unless `udp:` (repeatable)
    #[arg(long, value_name = "[udp:]HOST:GUEST")]
    pub forward: Vec<Forward>,
    /// Put the guest on this existing tap device instead of QEMU's user network
    #[arg(long, value_name = "IFNAME", conflicts_with = "forward")]
    pub tap: Option<String>,
    /// Kernel options before the program's arguments (`ip=ADDR/LEN gw=ADDR`)
    #[arg(long, value_name = "OPTIONS", default_value = "")]
    pub kernel_options: String,
    /// How QEMU runs the guest: KVM when usable, else TCG (its emulator)
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// The program's arguments
    #[arg(last = true, value_name = "ARGS")]
    pub program_args: Vec<String>,
}

/// The QEMU accelerators.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// KVM when /dev/kvm can run the guest, else TCG
    Auto,
    /// Hardware virtualisation
    Kvm,
    /// QEMU's emulator: slower, works everywhere
    Tcg,
}

/// One host port forwarded to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    udp: bool,
    host: u16,
    guest: u16,
}

impl FromStr for Forward {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (udp, ports) = match s.split_once(':') {
            Some(("udp", rest)) => (true, rest),
            Some(("tcp", rest)) => (false, rest),
            _ => (false, s),
        };
        let port = |p: &str| p.parse::<u16>().map_err(|e| format!("{p:?}: {e}"));
        match ports.split_once(':') {
            Some((host, guest)) => Ok(Forward {
                udp,
                host: port(host)?,
                guest: port(guest)?,
            }),
            None => Err(format!(
                "{s:?} is not HOST:GUEST (e.g. 8443:443 or udp:5353:53)"
            )),
        }
    }
}

impl Forward {
    /// Forwards TCP (or UDP) port `host` on 127.0.0.1 to the guest's `guest`.
    pub fn new(udp: bool, host: u16, guest: u16) -> Forward {
        Forward { udp, host, guest }
    }

    fn hostfwd(&self) -> String {
        let proto = if self.udp { "udp" } else { "tcp" };
        format!(
            "hostfwd={proto}:{}:{}-:{}",
            Ipv4Addr::LOCALHOST,
            self.host,
            self.guest
        )
    }
}

impl Run {
    /// Boots the image and returns the guest's exit status.
    pub fn run(&self) -> Result<ExitCode> {
        let mut qemu = self.command()?;
        tracing::info!(?qemu, "starting QEMU");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let child = qemu
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("starting {qemu:?}; run `kith build` to install QEMU"))?;
            supervise(child).await
        })
    }

    /// The QEMU command that boots the image, with KVM when it can run it.
    pub fn command(&self) -> Result<Command> {
        let arch = image_arch(&self.image)?;
        Ok(self.qemu(arch, self.use_kvm(arch)))
    }

    /// Whether to run under KVM: as asked, or when it can run the guest.
    fn use_kvm(&self, arch: Arch) -> bool {
        match self.accel {
            Accel::Kvm => true,
            Accel::Tcg => false,
            Accel::Auto => kvm_usable(arch)
                .map_err(|why| eprintln!("kith: running under TCG (no KVM: {why})"))
                .is_ok(),
        }
    }

    /// The QEMU command line for `arch`.
    fn qemu(&self, arch: Arch, kvm: bool) -> Command {
        let mut c = machine(arch, kvm);
        c.args(["-accel", if kvm { "kvm" } else { "tcg" }]);
        c.args(["-m", &format!("{}M", self.memory)]);
        let console = ["-display", "none", "-serial", "stdio"];
        c.args(["-nodefaults", "-no-user-config"]).args(console);
        let netdev = match &self.tap {
            Some(ifname) => format!("tap,id=n0,ifname={ifname},script=no,downscript=no"),
            None => {
                let forwards = self.forward.iter().map(|f| format!(",{}", f.hostfwd()));
                format!("user,id=n0{}", forwards.collect::<String>())
            }
        };
        c.args(["-netdev", &netdev, "-device", "virtio-net-device,netdev=n0"]);
        if let Some(disk) = &self.disk {
            let drive = format!("file={},format=raw,if=none,id=d0", disk.display());
            c.args(["-drive", &drive, "-device", "virtio-blk-device,drive=d0"]);
        }
        c.arg("-kernel").arg(&self.image);
        c.args(["-append", &self.command_line()]);
        c
    }

    /// Kernel options, then `--` and the program's arguments.
    fn command_line(&self) -> String {
        let mut line = self.kernel_options.trim().to_string();
        line.push_str(" --");
        for arg in &self.program_args {
            line.push(' ');
            line.push_str(arg);
        }
        line.trim_start().to_string()
    }
}

/// QEMU for `arch`: the machine, its CPU, and the device the guest's exit
/// status leaves through.
fn machine(arch: Arch, kvm: bool) -> Command {
    let (program, machine, cpu, exit) = match arch {
        Arch::X86_64 => (
            "qemu-system-x86_64",
            "microvm",
            if kvm {
                "host,-arch-capabilities"
            } else {
                "max"
            },
            ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"],
        ),
        Arch::Aarch64 => (
            "qemu-system-aarch64",
            "virt",
            if kvm { "host" } else { "max" },
            ["-semihosting-config", "enable=on,target=native"],
        ),
    };
    let mut c = Command::new(program);
    c.args(["-M", machine, "-cpu", cpu]).args(exit);
    c
}

/// The machine an image is for: an arm64 Image (gzipped or not) by its header's magic,
/// an ELF by its `e_machine`.
fn image_arch(image: &Path) -> Result<Arch> {
    let mut header = [0u8; 64];
    let read = std::fs::File::open(image).and_then(|f| {
        let mut f = std::io::BufReader::new(f);
        // A gzipped image is an aarch64 Image.gz (`kith build` packs them so).
        if f.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
            flate2::bufread::GzDecoder::new(f).read_exact(&mut header)
        } else {
            f.read_exact(&mut header)
        }
    });
    read.with_context(|| format!("reading {}", image.display()))?;
    if &header[56..60] == b"ARM\x64" {
        return Ok(Arch::Aarch64);
    }
    if &header[..4] != b"\x7fELF" {
        bail!(
            "{} is neither an ELF image nor an arm64 Image; build one with `kith build`",
            image.display()
        );
    }
    match u16::from_le_bytes([header[18], header[19]]) {
        0x3e => Ok(Arch::X86_64),
        0xb7 => Ok(Arch::Aarch64),
        other => bail!(
            "{} is for ELF machine {other:#x}, not x86_64 or aarch64",
            image.display()
        ),
    }
}

/// Whether KVM can run a guest for `arch` here: the host has the same architecture,
/// /dev/kvm opens for reading and writing, and it is not the PVM hypervisor
/// (`kvm_pvm`), which runs only PVM-aware guests and stops ours with "emulation
/// failure" at their first SSE instruction.
pub fn kvm_usable(arch: Arch) -> Result<(), String> {
    if std::env::consts::ARCH != arch.name() {
        return Err(format!("the host is {}", std::env::consts::ARCH));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("/dev/kvm: {e}"))?;
    if Path::new("/sys/module/kvm_pvm").exists() {
        return Err("/dev/kvm is the nested PVM hypervisor, which cannot run this guest".into());
    }
    Ok(())
}

/// Waits for QEMU, copying its stderr to ours, and stops it when this process is
/// interrupted or terminated. Returns the guest's exit status.
async fn supervise(mut child: Child) -> Result<ExitCode> {
    let stderr = child.stderr.take().expect("piped stderr");
    let copier = tokio::spawn(copy_stderr(stderr));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let status = tokio::select! {
        status = child.wait() => status?,
        _ = term.recv() => return stop(child, 143).await,
        _ = int.recv() => return stop(child, 130).await,
    };
    let qemu_failed = copier.await.unwrap_or(false);
    exit_code(status, qemu_failed)
}

/// Kills QEMU and returns `code`.
async fn stop(mut child: Child, code: u8) -> Result<ExitCode> {
    child.kill().await?;
    Ok(ExitCode::from(code))
}

/// Copies QEMU's stderr to ours; true if QEMU itself reported an error (its messages
/// start with its program name).
async fn copy_stderr(stderr: ChildStderr) -> bool {
    let mut failed = false;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        failed |= line.starts_with("qemu-system-");
        let _ = writeln!(std::io::stderr(), "{line}");
    }
    failed
}

/// The guest's exit status from QEMU's: `status * 2 + 1` from the exit device.
fn exit_code(status: std::process::ExitStatus, qemu_failed: bool) -> Result<ExitCode> {
    let Some(code) = status.code() else {
        let signal = status.signal().unwrap_or(0);
        return Ok(ExitCode::from(128u8.wrapping_add(signal as u8)));
    };
    if qemu_failed || code % 2 == 0 && code != 0 {
        bail!("QEMU failed ({status}); its message is above");
    }
    Ok(ExitCode::from(((code.max(1) - 1) / 2) as u8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_parse_with_and_without_protocol() {
        let tcp: Forward = "8443:443".parse().unwrap();
        assert_eq!(tcp.hostfwd(), "hostfwd=tcp:127.0.0.1:8443-:443");
        let udp: Forward = "udp:5353:53".parse().unwrap();
        assert_eq!(udp.hostfwd(), "hostfwd=udp:127.0.0.1:5353-:53");
        assert!("8443".parse::<Forward>().is_err());
        assert!("udp:99999:53".parse::<Forward>().is_err());
    }

    #[test]
    fn the_command_line_puts_program_arguments_after_the_separator() {
        let run = Run {
            image: PathBuf::from("x.img"),
            disk: None,
            memory: 64,
            forward: Vec::new(),
            tap: None,
            kernel_options: "ip=10.0.2.15/24".into(),
            accel: Accel::Tcg,
            program_args: vec!["443".into()],
        };
        assert_eq!(run.command_line(), "ip=10.0.2.15/24 -- 443");
    }

    #[test]
    fn a_tap_device_replaces_the_user_network() {
        let netdev = |run: &Run| {
            let qemu = run.qemu(Arch::X86_64, false);
            let args: Vec<String> = qemu
                .as_std()
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let at = args.iter().position(|a| a == "-netdev").unwrap();
            args[at + 1].clone()
        };
        let mut run = Run {
            image: PathBuf::from("x.img"),
            disk: None,
            memory: 64,
            forward: vec!["8443:443".parse().unwrap()],
            tap: None,
            kernel_options: String::new(),
            accel: Accel::Tcg,
            program_args: Vec::new(),
        };
        assert_eq!(netdev(&run), "user,id=n0,hostfwd=tcp:127.0.0.1:8443-:443");
        run.forward.clear();
        run.tap = Some("tap0".into());
        assert_eq!(
            netdev(&run),
            "tap,id=n0,ifname=tap0,script=no,downscript=no"
        );
    }
}
