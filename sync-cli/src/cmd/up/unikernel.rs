//! `kith up --unikernel`: the suite as unikernel images, one VM per service.
//!
//! Each service's image is built with `kith build`'s code (cargo reuses its work after
//! the first build) into `<store>/local/unikernel/`, and boots under QEMU as `kith run`
//! boots it, on a disk of its own: written from this store on the first run, as `kith
//! disk write` does, with that service's key and no other, and kept afterwards, since it
//! is that VM's replica. The VMs share only QEMU's user network: every port a service
//! listens on is forwarded from a free port on 127.0.0.1 (sync from its published 7447
//! when free, as `kith up` serves it), and the mail VM asks the DNS VM, through the
//! host's forward, for its SPF, DKIM and DMARC records. The DNS, contacts, calendar and
//! mail VMs keep their replicas in step through the sync VM (`--sync`, reached the same
//! way), as the user's devices do, so a card written to one VM reaches every replica.
//! The endpoints are registered as `kith up` registers its own, so `kith status` lists
//! them; SIGINT or SIGTERM stops every VM.

use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use tokio::process::Child;
use tokio::signal::unix::{SignalKind, signal};

use crate::cmd::build::{self, Arch, Service, service_name};
use crate::cmd::disk;
use crate::cmd::run::{Accel, Forward, Run};
use crate::context::Context;
use crate::remote::DEFAULT_PORT;
use crate::running::{self, Registration};

/// How long a VM may take from QEMU's start to its "serving" line (TCG is slow).
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// The size of a service disk, in MiB: sparse, so it takes only the space its store
/// uses; a smaller disk from an earlier run grows to it (the store's pack region is
/// whatever the disk holds past its tables).
const DISK_MIB: u64 = 4096;

/// A booted service VM.
struct Vm {
    service: running::Service,
    qemu: Child,
    console: PathBuf,
}

/// Boots `services` as images for `arch` with `memory` MiB each, serves until SIGINT or
/// SIGTERM, then stops them.
pub fn run(ctx: &Context, services: &[Service], arch: Arch, memory: u32) -> Result<ExitCode> {
    let dir = ctx.dir.join("local").join("unikernel");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _guard = rt.enter();
    build::install_toolchain(arch)?;
    let plans = Plan::all(services)?;
    let mut vms = Vec::new();
    for (&service, plan) in services.iter().zip(plans) {
        let image = dir.join(format!("{}-{}.img", service_name(service), arch.name()));
        build::build_image(service.package(), arch, true, &image)?;
        let disk = prepare_disk(ctx, &dir, service)?;
        vms.push(boot(&dir, service, &image, &disk, memory, plan)?);
    }
    let result = rt.block_on(serve(ctx, &mut vms));
    for vm in &mut vms {
        let _ = vm.qemu.start_kill();
    }
    rt.block_on(async {
        for vm in &mut vms {
            let _ = vm.qemu.wait().await;
        }
    });
    result
}

/// The service's disk: kept when it exists (the VM's replica), else written from the
/// store; either way its secrets are that service's own and no other, as this replica
/// holds them now (a device enrolled since the last run gets its TSIG secret there).
fn prepare_disk(ctx: &Context, dir: &Path, service: Service) -> Result<PathBuf> {
    let path = dir.join(format!("{}.raw", service_name(service)));
    let key = match service {
        Service::Contacts | Service::Calendar => "dav".to_string(),
        other => service_name(other),
    };
    if !path.exists() {
        let write = disk::Write {
            disk: path.clone(),
            size: DISK_MIB,
            keys: vec![key],
        };
        let written = write.write(ctx)?;
        eprintln!("kith: {}: {written}", path.display());
        return Ok(path);
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if file.metadata()?.len() < DISK_MIB << 20 {
        file.set_len(DISK_MIB << 20)
            .with_context(|| format!("growing {} to {DISK_MIB} MiB", path.display()))?;
    }
    let store = kith_store::Store::open_disk(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    disk::write_service_keys(ctx, &store, &[key.as_str()])?;
    Ok(path)
}

/// One port a service VM answers on, forwarded from the host.
struct Port {
    /// The URL scheme of its protocol, as `kith status` prints it.
    scheme: &'static str,
    /// The port on 127.0.0.1.
    host: u16,
    /// The guest's port.
    guest: u16,
    /// Forwarded for UDP as well as TCP.
    udp: bool,
}

/// Where a service VM answers, and the program's arguments.
struct Plan {
    ports: Vec<Port>,
    args: Vec<String>,
}

impl Plan {
    /// Every service's plan: ports first, so each VM can be told where the DNS and
    /// sync VMs are (through the host, 10.0.2.2) whatever the boot order.
    fn all(services: &[Service]) -> Result<Vec<Plan>> {
        let mut plans = services
            .iter()
            .map(|&s| Plan::ports(s))
            .collect::<Result<Vec<_>>>()?;
        let host_port = |wanted: Service| {
            let at = services.iter().position(|&s| s == wanted)?;
            Some(plans[at].ports[0].host)
        };
        let (dns, sync) = (host_port(Service::Dns), host_port(Service::Sync));
        for (plan, &service) in plans.iter_mut().zip(services) {
            plan.args = Plan::args(service, &plan.ports, dns, sync);
        }
        Ok(plans)
    }

    /// The program's arguments: its port or (mail) its name server, and the sync VM.
    fn args(service: Service, ports: &[Port], dns: Option<u16>, sync: Option<u16>) -> Vec<String> {
        let mut args = match (service, dns) {
            (Service::Mail, Some(port)) => vec![format!("10.0.2.2:{port}")],
            (Service::Mail, None) => Vec::new(),
            _ => vec![ports[0].guest.to_string()],
        };
        if let (Service::Dns | Service::Contacts | Service::Calendar | Service::Mail, Some(port)) =
            (service, sync)
        {
            args.extend(["--sync".to_string(), format!("10.0.2.2:{port}")]);
        }
        args
    }

    /// The service's ports, each forwarded from a free host port.
    fn ports(service: Service) -> Result<Plan> {
        let ports: &[(&str, u16, bool)] = match service {
            Service::Dns => &[("dns", 53, true)],
            Service::Sync => &[("kith", 7447, false)],
            Service::Contacts | Service::Calendar => &[("https", 443, false)],
            Service::Mail => &[
                ("smtp", 25, false),
                ("submission", 587, false),
                ("submissions", 465, false),
                ("imaps", 993, false),
            ],
        };
        let ports = ports
            .iter()
            .map(|&(scheme, guest, udp)| {
                let host = match guest {
                    // Sync on its published port when free, as `kith up` serves it.
                    DEFAULT_PORT if TcpListener::bind((Ipv4Addr::LOCALHOST, guest)).is_ok() => {
                        guest
                    }
                    _ => free_port(udp)?,
                };
                Ok(Port {
                    scheme,
                    host,
                    guest,
                    udp,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Plan {
            ports,
            args: Vec::new(),
        })
    }

    fn endpoints(&self) -> Vec<String> {
        let url = |p: &Port| match p.scheme {
            "https" => format!("https://127.0.0.1:{}/", p.host),
            scheme => format!("{scheme}://127.0.0.1:{}", p.host),
        };
        self.ports.iter().map(url).collect()
    }

    /// `kith run`'s forwards: each port over TCP, and over UDP where asked.
    fn forwards(&self) -> Vec<Forward> {
        let mut forwards = Vec::new();
        for p in &self.ports {
            forwards.push(Forward::new(false, p.host, p.guest));
            if p.udp {
                forwards.push(Forward::new(true, p.host, p.guest));
            }
        }
        forwards
    }
}

/// A port free on 127.0.0.1 for TCP (and for UDP too when `udp`).
fn free_port(udp: bool) -> Result<u16> {
    for _ in 0..20 {
        let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let port = tcp.local_addr()?.port();
        if !udp || UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no port on 127.0.0.1 is free for both TCP and UDP")
}

/// Starts QEMU on the image, its console going to `<dir>/<service>.console`.
fn boot(
    dir: &Path,
    service: Service,
    image: &Path,
    disk: &Path,
    memory: u32,
    plan: Plan,
) -> Result<Vm> {
    let run = Run {
        image: image.to_path_buf(),
        disk: Some(disk.to_path_buf()),
        memory,
        forward: plan.forwards(),
        tap: None,
        kernel_options: String::new(),
        accel: Accel::Auto,
        program_args: plan.args.clone(),
    };
    let console = dir.join(format!("{}.console", service_name(service)));
    let log = std::fs::File::create(&console)
        .with_context(|| format!("creating {}", console.display()))?;
    let qemu = run
        .command()?
        .stdout(log.try_clone()?)
        .stderr(log)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting QEMU; run `kith build` to install it")?;
    Ok(Vm {
        service: running::Service {
            name: service_name(service),
            endpoints: plan.endpoints(),
        },
        qemu,
        console,
    })
}

/// Waits for every VM to serve, registers and prints the endpoints, then waits for
/// SIGINT or SIGTERM (or a VM that stops).
async fn serve(ctx: &Context, vms: &mut [Vm]) -> Result<ExitCode> {
    for vm in vms.iter_mut() {
        wait_serving(vm).await?;
    }
    let services: Vec<running::Service> = vms.iter().map(|vm| vm.service.clone()).collect();
    let _registrations = services
        .iter()
        .map(|s| Registration::new(&ctx.dir, s.clone()))
        .collect::<Result<Vec<_>>>()?;
    if ctx.global.json {
        let _ = crate::output::print_json(&serde_json::json!({ "services": services }));
    } else {
        crate::cmd::serve::announce(&services);
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut check = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(ExitCode::SUCCESS),
            _ = int.recv() => return Ok(ExitCode::SUCCESS),
            _ = check.tick() => {
                for vm in vms.iter_mut() {
                    if let Some(status) = vm.qemu.try_wait()? {
                        bail!("the {} VM stopped ({status}); its console is in {}",
                            vm.service.name, vm.console.display());
                    }
                }
            }
        }
    }
}

/// Waits until the VM's console says it serves; fails if QEMU stops or takes too long.
async fn wait_serving(vm: &mut Vm) -> Result<()> {
    let ready = format!("{}: serving", vm.service.name);
    let started = Instant::now();
    loop {
        let console = std::fs::read_to_string(&vm.console).unwrap_or_default();
        if console.contains(&ready) {
            return Ok(());
        }
        if let Some(status) = vm.qemu.try_wait()? {
            bail!(
                "the {} VM stopped before serving ({status}); its console:\n{console}",
                vm.service.name
            );
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "the {} VM did not serve within {} s; its console:\n{console}",
                vm.service.name,
                READY_TIMEOUT.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
