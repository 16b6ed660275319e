//! The store commands of `kith`, run as real processes.

mod common;

use common::Kith;

#[test]
fn put_get_ls_rm_round_trip_exact_bytes() {
    let k = Kith::init();
    let bytes: Vec<u8> = (0..=255u8).chain(*b"\r\n\0end").collect();
    let out = k.run_with(
        &["put", "/contacts/me/default/a.vcf", "-m", "add a"],
        &bytes,
    );
    assert!(out.status.success());
    let got = k
        .cmd(&["get", "/contacts/me/default/a.vcf"])
        .output()
        .unwrap();
    assert_eq!(got.stdout, bytes);
    assert_eq!(k.ok(&["ls"]), "contacts/\n");
    assert_eq!(k.ok(&["ls", "-r"]), "contacts/me/default/a.vcf\n");
    assert!(k.fails(&["rm", "/contacts"]).contains("rm -r"));
    k.ok(&["rm", "/contacts/me/default/a.vcf"]);
    assert_eq!(k.ok(&["ls"]), "");
    assert!(
        k.fails(&["get", "/contacts/me/default/a.vcf"])
            .contains("no file")
    );
}

#[test]
fn log_json_has_the_documented_fields_newest_first() {
    let k = Kith::init();
    k.run_with(&["put", "/x", "-m", "first"], b"1");
    k.run_with(&["put", "/y", "-m", "second"], b"2");
    let log = k.json(&["log"]);
    let log = log.as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["message"], "second");
    assert_eq!(log[0]["author"], "test-device");
    assert_eq!(log[0]["parents"][0], log[1]["commit"]);
    for field in ["commit", "tree", "parents", "author", "time", "message"] {
        assert!(log[0].get(field).is_some(), "missing {field}");
    }
    assert_eq!(k.json(&["log", "/x"]).as_array().unwrap().len(), 1);
    assert_eq!(k.json(&["log", "-n", "1"]).as_array().unwrap().len(), 1);
}

#[test]
fn diff_between_revisions() {
    let k = Kith::init();
    k.run_with(&["put", "/a"], b"1");
    k.run_with(&["put", "/b"], b"1");
    let first = k.json(&["log"])[1]["commit"].as_str().unwrap().to_string();
    k.run_with(&["put", "/a"], b"2");
    k.ok(&["rm", "/b"]);
    assert_eq!(k.ok(&["diff"]), "D /b\n");
    assert_eq!(k.ok(&["diff", &first]), "M /a\n");
    assert_eq!(k.ok(&["diff", &first[..10], "main"]), "M /a\n");
    let json = k.json(&["diff", &first]);
    assert_eq!(json[0]["status"], "M");
}

#[test]
fn branches_are_independent_and_deletable() {
    let k = Kith::init();
    k.run_with(&["put", "/f"], b"main");
    k.ok(&["branch", "work"]);
    k.run_with(&["--branch", "work", "put", "/f"], b"work");
    assert_eq!(k.ok(&["get", "/f"]), "main");
    assert_eq!(k.ok(&["--branch", "work", "get", "/f"]), "work");
    let list = k.ok(&["branch"]);
    assert!(list.contains("* main") && list.contains("  work"), "{list}");
    assert!(k.fails(&["branch", "work"]).contains("already exists"));
    k.ok(&["branch", "-d", "work"]);
    assert!(!k.ok(&["branch"]).contains("work"));
    let gc = k.json(&["gc"]);
    assert!(gc["dropped"].as_u64().unwrap() >= 1, "{gc}");
    k.ok(&["fsck"]);
    assert_eq!(k.ok(&["get", "/f"]), "main");
}

#[test]
fn errors_say_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let k = Kith { dir };
    let err = k.fails(&["ls"]);
    assert!(err.contains("kith init"), "{err}");
    let k = Kith::init();
    assert!(k.fails(&["init"]).contains("already exists"));
    assert!(k.fails(&["put", "/a/../b"]).contains("invalid path"));
    assert!(
        k.fails(&["--branch", "no-such", "branch", "x"])
            .contains("commit something first")
    );
}

#[test]
fn up_creates_the_store_on_first_run_and_status_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let k = Kith { dir };
    let out = k.ok(&["up"]);
    assert!(out.contains("created the Kith store"), "{out}");
    let status = k.json(&["status"]);
    assert_eq!(status["services"], serde_json::json!([]));
    assert!(k.ok(&["up"]).contains("opened"));
    // What `kith up` then says to do works on the store it made.
    let out = k.ok(&["init", "--zone", "ada.home.arpa", "--device", "laptop"]);
    assert!(out.contains("added the identity of ada.home.arpa"), "{out}");
    assert!(out.contains("laptop.ada.home.arpa"), "{out}");
    let again = k.fails(&["init", "--zone", "bob.home.arpa"]);
    assert!(again.contains("already has the identity"), "{again}");
}

#[test]
fn help_teaches_every_command() {
    let k = Kith {
        dir: tempfile::tempdir().unwrap(),
    };
    let help = k.ok(&["--help"]);
    for cmd in [
        "init", "import", "export", "put", "get", "rm", "ls", "log", "diff", "branch", "fsck",
        "gc", "up", "status",
    ] {
        assert!(help.contains(cmd), "--help lacks {cmd}");
    }
    assert!(k.ok(&["import", "--help"]).contains("exactly the files"));
}

#[test]
fn merge_records_conflicts_that_resolve_settles() {
    let k = Kith::init();
    k.run_with(&["put", "/notes/a.txt"], b"base");
    k.ok(&["branch", "phone"]);
    k.run_with(&["put", "/notes/a.txt"], b"laptop");
    k.run_with(&["put", "/notes/b.txt"], b"laptop only");
    k.run_with(&["--branch", "phone", "put", "/notes/a.txt"], b"phone");
    k.run_with(&["--branch", "phone", "put", "/notes/c.txt"], b"phone only");

    let out = k.run_with(&["merge", "phone"], b"");
    assert_eq!(out.status.code(), Some(1), "a merge with conflicts exits 1");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 paths conflict") && err.contains("kith conflicts"),
        "{err}"
    );
    assert_eq!(k.ok(&["get", "/notes/c.txt"]), "phone only");
    assert_eq!(
        k.ok(&["get", "/notes/a.txt"]),
        "laptop",
        "our side is served meanwhile"
    );

    let conflicts = k.json(&["conflicts"]);
    assert_eq!(conflicts[0]["path"], "/notes/a.txt");
    assert!(conflicts[0]["theirs"].is_string() && conflicts[0]["base"].is_string());
    assert!(k.ok(&["conflicts"]).contains("/notes/a.txt"));

    let out = k.run_with(&["resolve", "/notes/a.txt", "-"], b"both");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(k.json(&["conflicts"]), serde_json::json!([]));
    assert_eq!(k.ok(&["get", "/notes/a.txt"]), "both");
    assert!(
        k.fails(&["resolve", "/notes/a.txt"])
            .contains("no conflict")
    );
    assert!(k.ok(&["merge", "phone"]).contains("already up to date"));
    let merge = &k.json(&["log"])[1];
    assert_eq!(merge["parents"].as_array().unwrap().len(), 2);
    k.ok(&["fsck"]);
}
