//! Zone transfers: AXFR only with a TSIG key, and the result is a valid zone.

use std::process::Command;

use crate::common::{Fixture, ZONE, status};

#[test]
fn axfr_is_refused_without_a_key() {
    let f = Fixture::new();
    let out = f.kdig(&["+tcp", ZONE, "AXFR"]);
    assert!(out.contains("REFUSED"), "{out}");
    assert!(!out.contains("\tSOA\t"), "{out}");
}

#[test]
fn axfr_with_a_wrong_key_is_not_served() {
    let f = Fixture::new();
    let wrong = format!(
        "hmac-sha256:{}:{}",
        f.laptop.tsig.name, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"
    );
    let out = f.kdig(&["-y", &wrong, ZONE, "AXFR"]);
    assert!(!out.contains("\tSOA\t"), "{out}");
}

#[test]
fn axfr_with_a_key_passes_named_checkzone() {
    let f = Fixture::new();
    let out = f.kdig(&[
        "-y",
        &f.laptop_key(),
        "+nocomments",
        "+nostats",
        ZONE,
        "AXFR",
    ]);
    let soas = out.lines().filter(|l| l.contains("\tSOA\t")).count();
    assert_eq!(soas, 2, "SOA opens and closes the transfer:\n{out}");
    for rtype in ["NS", "MX", "SRV", "TLSA", "TXT", "A", "AAAA"] {
        assert!(
            out.contains(&format!("\t{rtype}\t")),
            "{rtype} missing:\n{out}"
        );
    }
    let zone_file = f.dir.path().join("transferred.zone");
    let body: String = out
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&zone_file, body).unwrap();
    let check = Command::new("named-checkzone")
        .args([ZONE, zone_file.to_str().unwrap()])
        .output()
        .expect("named-checkzone runs (apt install bind9-utils)");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "named-checkzone:\n{report}");
    assert!(report.contains("OK"), "{report}");
    assert_eq!(status(&f.kdig(&[ZONE, "SOA"])), "NOERROR");
}
