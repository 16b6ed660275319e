//! `kith init --zone`, `kith device`, `kith identity` and `kith serve dns`, run as real
//! processes, with kdig and knsupdate against the server on 127.0.0.1.

mod common;

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};

use common::Kith;

/// A store with the identity of alice.home.arpa, this device being `board`.
fn identity() -> Kith {
    let k = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    let out = k.ok(&["init", "--zone", "alice.home.arpa", "--device", "board"]);
    assert!(out.contains("board.alice.home.arpa"), "{out}");
    k
}

/// A `kith` process serving DNS on a free port; stopped (killed) when dropped.
struct DnsServer {
    child: Child,
    addr: String,
}

impl DnsServer {
    /// `kith serve dns` on a free port.
    fn start(k: &Kith) -> DnsServer {
        DnsServer::spawn(k, &["serve", "dns", "--listen", "127.0.0.1:0"])
    }

    /// Runs a `kith` command until it prints its `dns://` endpoint.
    fn spawn(k: &Kith, args: &[&str]) -> DnsServer {
        let mut child = k
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.starts_with("dns://") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "kith {args:?} ended without serving DNS"
            );
        }
        let addr = line.trim().strip_prefix("dns://").unwrap().to_string();
        DnsServer { child, addr }
    }

    fn kdig(&self, args: &[&str]) -> String {
        let (ip, port) = self.addr.rsplit_once(':').unwrap();
        let out = Command::new("kdig")
            .arg(format!("@{ip}"))
            .args(["-p", port, "+short", "+timeout=2", "+retry=0"])
            .args(args)
            .output()
            .expect("kdig runs (apt install knot-dnsutils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn knsupdate(&self, key: &str, update: &str) -> bool {
        let (ip, port) = self.addr.rsplit_once(':').unwrap();
        let mut child = Command::new("knsupdate")
            .args(["-y", key, "-t", "3", "-r", "0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("knsupdate runs (apt install knot-dnsutils)");
        let script = format!("server {ip} {port}\nzone alice.home.arpa.\n{update}\nsend\n");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        child.wait().unwrap().success()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn init_zone_root_cert_and_device_bundle() {
    let k = identity();
    let pem = k.ok(&["identity", "root-cert"]);
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    assert_eq!(k.ok(&["get", "/identity/root.pem"]), pem);
    let bundle = k.json(&["device", "add", "laptop"]);
    assert_eq!(bundle["device"], "laptop");
    assert_eq!(bundle["host"], "laptop.alice.home.arpa");
    assert_eq!(bundle["root_certificate"].as_str().unwrap(), pem);
    assert!(bundle["key"].as_str().unwrap().contains("PRIVATE KEY"));
    assert_eq!(bundle["tsig"]["algorithm"], "hmac-sha256");
    assert_eq!(bundle["tsig"]["name"], "laptop.alice.home.arpa.");
    // Private keys stay out of the store; the local state is private.
    let listing = k.ok(&["ls", "-r", "/identity"]);
    assert!(listing.contains("devices/laptop.pem"), "{listing}");
    assert!(!listing.contains(".key"), "{listing}");
    let mode = |p: &str| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(k.store().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("local"), 0o700);
    assert_eq!(mode("local/root.key"), 0o600);
    assert_eq!(mode("local/tsig/laptop.key"), 0o600);
    // `-o` writes the bundle to a private file.
    let file = k.dir.path().join("phone.json");
    k.ok(&["device", "add", "phone", "-o", file.to_str().unwrap()]);
    let text = std::fs::read_to_string(&file).unwrap();
    let phone: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(phone["device"], "phone");
    assert!(
        k.fails(&["device", "add", "phone"])
            .contains("enrolled already")
    );
    let revoked = k.json(&["device", "revoke", "phone"]);
    assert_eq!(revoked["device"], "phone");
    assert!(k.ok(&["get", "/identity/revoked"]).contains("phone"));
}

#[test]
fn serve_dns_answers_and_a_device_update_is_a_commit_by_the_device() {
    let k = identity();
    let bundle = k.json(&["device", "add", "laptop"]);
    let key = format!(
        "hmac-sha256:{}:{}",
        bundle["tsig"]["name"].as_str().unwrap(),
        bundle["tsig"]["secret"].as_str().unwrap()
    );
    let dns = DnsServer::start(&k);
    assert_eq!(
        dns.kdig(&["board.alice.home.arpa", "A"]).trim(),
        "127.0.0.1"
    );
    assert!(dns.knsupdate(&key, "update add laptop.alice.home.arpa. 300 A 192.0.2.10"));
    assert_eq!(
        dns.kdig(&["laptop.alice.home.arpa", "A"]).trim(),
        "192.0.2.10"
    );
    let log = k.json(&["log", "-n", "1"]);
    assert_eq!(log[0]["author"], "laptop");
    assert!(
        log[0]["message"]
            .as_str()
            .unwrap()
            .contains("dns update by laptop")
    );
    assert!(!dns.knsupdate(&key, "update add board.alice.home.arpa. 300 A 192.0.2.11"));
    // A commit from another process (the CLI) changes the answers of the running server.
    k.run_with(
        &["put", "/identity/zone/extra"],
        b"extra.alice.home.arpa. 300 IN A 192.0.2.12\n",
    );
    let mut seen = String::new();
    for _ in 0..40 {
        seen = dns.kdig(&["extra.alice.home.arpa", "A"]);
        if seen.trim() == "192.0.2.12" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(seen.trim(), "192.0.2.12");
    k.ok(&["device", "revoke", "laptop"]);
    let mut refused = false;
    for _ in 0..40 {
        if !dns.knsupdate(&key, "update add laptop.alice.home.arpa. 300 A 192.0.2.13") {
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(refused, "a revoked device's key is refused");
}

#[test]
fn up_serves_every_service_for_an_identity_and_status_lists_them_while_they_run() {
    let k = identity();
    let dns = DnsServer::spawn(&k, &["up"]);
    assert!(
        dns.addr.starts_with("127.0.0.1:"),
        "loopback by default: {}",
        dns.addr
    );
    assert!(
        dns.kdig(&["alice.home.arpa", "SOA"])
            .contains("alice.home.arpa.")
    );
    let status = k.json(&["status"]);
    let services = status["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["calendar", "contacts", "dns", "mail", "sync"],
        "{status}"
    );
    let endpoint = |i: usize| services[i]["endpoints"][0].as_str().unwrap().to_string();
    assert_eq!(endpoint(2), format!("dns://{}", dns.addr));
    assert!(endpoint(0).starts_with("https://127.0.0.1:"), "{status}");
    assert!(endpoint(1).starts_with("https://127.0.0.1:"), "{status}");
    assert!(endpoint(3).starts_with("smtp://127.0.0.1:"), "{status}");
    assert!(endpoint(4).starts_with("kith://127.0.0.1:"), "{status}");
    let mail: Vec<&str> = services[3]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().split("://").next().unwrap())
        .collect();
    assert_eq!(
        mail,
        ["smtp", "submission", "submissions", "imaps"],
        "{status}"
    );
    let term = Command::new("kill")
        .args(["-TERM", &dns.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let mut dns = dns;
    assert!(
        dns.child.wait().unwrap().success(),
        "kith up stops cleanly on SIGTERM"
    );
    assert_eq!(k.json(&["status"])["services"], serde_json::json!([]));
}

#[test]
fn up_serves_only_the_services_asked_for() {
    let k = identity();
    let dns = DnsServer::spawn(&k, &["up", "--services", "dns,contacts"]);
    assert!(
        dns.kdig(&["alice.home.arpa", "SOA"])
            .contains("alice.home.arpa.")
    );
    let status = k.json(&["status"]);
    let names: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["contacts", "dns"], "{status}");
    let refused = k.fails(&["up", "--services", "dns,printer"]);
    assert!(
        refused.contains("possible values"),
        "an unknown service is refused with the list of services: {refused}"
    );
}

#[test]
fn disk_write_puts_every_services_secrets_or_only_those_named() {
    let k = identity();
    k.ok(&[
        "device",
        "add",
        "laptop",
        "-o",
        k.dir.path().join("laptop.json").to_str().unwrap(),
    ]);
    // The files on a disk's `local/services` branch under FOLDER, listed by `kith`.
    let ls = |disk: &str, folder: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_kith"))
            .args([
                "--store",
                &format!("disk:{disk}"),
                "--branch",
                "local/services",
            ])
            .args(["ls", folder])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let write = |name: &str, keys: &[&str]| {
        let disk = k.dir.path().join(name).to_str().unwrap().to_string();
        let mut args = vec!["disk", "write", &disk, "--size", "8"];
        for key in keys {
            args.extend(["--key", key]);
        }
        let out = k.ok(&args);
        (disk, out)
    };
    let (all, out) = write("all.raw", &[]);
    assert!(out.contains("7 secrets"), "{out}");
    assert_eq!(ls(&all, "/"), "dkim.key\nservices/\ntsig/\n");
    assert_eq!(
        ls(&all, "/services"),
        "dav.key\ndns.key\nmail.key\nsync.key\n"
    );
    assert_eq!(ls(&all, "/tsig"), "board.key\nlaptop.key\n");
    let (mail, _) = write("mail.raw", &["mail"]);
    assert_eq!(
        ls(&mail, "/"),
        "dkim.key\nservices/\n",
        "mail brings the DKIM key"
    );
    assert_eq!(ls(&mail, "/services"), "mail.key\n");
    let (dns, _) = write("dns.raw", &["dns"]);
    assert_eq!(
        ls(&dns, "/"),
        "services/\ntsig/\n",
        "dns brings the TSIG secrets"
    );
    assert_eq!(ls(&dns, "/services"), "dns.key\n");
    let (dav, _) = write("dav.raw", &["dav"]);
    assert_eq!(ls(&dav, "/services"), "dav.key\n");
    let refused = k.fails(&["disk", "write", &dav, "--key", "printer"]);
    assert!(refused.contains("possible values"), "{refused}");
}
