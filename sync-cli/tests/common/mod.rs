//! Running the real `kith` binary against a store in a temporary folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The python Debian's packages install into (not a pyenv shim).
pub const PYTHON: &str = "/usr/bin/python3";

/// A temporary store and the `kith` binary to drive it.
pub struct Kith {
    pub dir: tempfile::TempDir,
}

impl Kith {
    /// A new store, created with `kith init`.
    pub fn init() -> Kith {
        let k = Kith {
            dir: tempfile::tempdir().unwrap(),
        };
        k.ok(&["init", "--device", "test-device"]);
        k
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A `kith` command on this store, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kith"));
        c.arg("--store")
            .arg(self.store())
            .args(args)
            .env_remove("KITH_STORE")
            .env("RUST_LOG", "warn");
        c
    }

    /// Starts a long-running command (`serve ...`); returns it and the first line it
    /// prints (its endpoint).
    pub fn spawn_service(&self, args: &[&str]) -> (std::process::Child, String) {
        let (child, endpoints) = self.spawn_endpoints(args);
        (child, endpoints.into_iter().next().unwrap_or_default())
    }

    /// Starts a long-running command (`serve ...`); returns it and every endpoint it
    /// announces (one write, a line each).
    pub fn spawn_endpoints(&self, args: &[&str]) -> (std::process::Child, Vec<String>) {
        use std::io::BufRead as _;
        let mut child = self
            .cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut reader = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        let rest = String::from_utf8_lossy(reader.buffer()).into_owned();
        let endpoints = std::iter::once(first.as_str())
            .chain(rest.lines())
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        (child, endpoints)
    }

    /// Starts `kith serve mail` on free ports, with the zone's DNS server as its resolver
    /// (it refuses every name outside the zone, so the sender checks stay on 127.0.0.1).
    pub fn spawn_mail(&self) -> Mail {
        let (dns, endpoint) = self.spawn_service(&["serve", "dns", "--listen", "127.0.0.1:0"]);
        let resolver = endpoint.trim_start_matches("dns://").to_string();
        let any = "127.0.0.1:0";
        let (child, endpoints) = self.spawn_endpoints(&[
            "serve",
            "mail",
            "--smtp",
            any,
            "--submission",
            any,
            "--submissions",
            any,
            "--imap",
            any,
            "--resolver",
            &resolver,
        ]);
        let port = |scheme: &str| {
            endpoints
                .iter()
                .find_map(|e| e.strip_prefix(&format!("{scheme}://127.0.0.1:")))
                .unwrap_or_else(|| panic!("serve mail announced {endpoints:?}"))
                .to_string()
        };
        Mail {
            smtp: port("smtp"),
            submission: port("submission"),
            submissions: port("submissions"),
            imap: port("imaps"),
            child,
            dns,
        }
    }

    /// Runs a command, feeding `stdin`.
    pub fn run_with(&self, args: &[&str], stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run_with(args, b"");
        assert!(
            out.status.success(),
            "kith {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run_with(args, b"");
        assert!(!out.status.success(), "kith {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs a command with `--json` and parses its output.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

/// Writes `n` distinct vCards of about 4 KB into `dir`, one file each.
pub fn write_vcards(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        std::fs::write(dir.join(format!("{i:05}-uid.vcf")), vcard(i)).unwrap();
    }
}

/// A realistic vCard 4.0 of about 4 KB, with CRLF line ends and folded lines.
pub fn vcard(i: usize) -> String {
    let mut s = format!(
        "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:urn:uuid:{i:08x}-7a1c-4b7e-9d3e-{:012x}\r\nFN:Person {i}\r\nN:Surname{i};Given{i};;;\r\n\
         EMAIL;TYPE=home:person{i}@example.org\r\nEMAIL;TYPE=work:p{i}@work.example.com\r\nTEL;TYPE=cell:+44 7700 {:06}\r\n\
         ADR;TYPE=home:;;{i} High Street;Town;;AB{} 1CD;UK\r\nORG:Company {};Team\r\nX-CUSTOM-FIELD;X-PARAM=kept:value {i}\r\n",
        i * 7919,
        i % 1_000_000,
        i % 90,
        i % 300
    );
    let mut seed = i as u64 * 2654435761 + 1;
    while s.len() < 3900 {
        s.push_str("NOTE:");
        for _ in 0..60 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            s.push((b'a' + (seed % 26) as u8) as char);
        }
        s.push_str("\r\n ");
        s.push_str("continued note text for the folding rules of RFC 6350\r\n");
    }
    s.push_str("END:VCARD\r\n");
    s
}

/// A running `kith serve mail` and the DNS server it resolves through; both stop on drop.
pub struct Mail {
    pub child: std::process::Child,
    pub dns: std::process::Child,
    pub smtp: String,
    pub submission: String,
    pub submissions: String,
    pub imap: String,
}

impl Drop for Mail {
    fn drop(&mut self) {
        for c in [&mut self.child, &mut self.dns] {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A store with an identity and the accounts `ada` (password `ada-pw`) and `bob`, as the
/// DAV tests use it.
pub fn dav_site() -> Kith {
    let k = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    k.ok(&["init", "--zone", "ada.home.arpa", "--device", "board"]);
    for user in ["ada", "bob"] {
        let out = k.run_with(&["user", "add", user], format!("{user}-pw\n").as_bytes());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    k
}

/// Runs the python `script` with `args`; fails the test, with its output, unless it
/// succeeds.
pub fn python_ok(script: &str, args: &[&str]) {
    let out = Command::new(PYTHON)
        .args(["-c", script])
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
