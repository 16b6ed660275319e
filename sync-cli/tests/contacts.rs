//! `kith serve contacts` as a real process, driven by real clients: curl, vdirsyncer,
//! khard, the python `caldav` library, litmus, and a 20-client stress run. Clients verify
//! TLS against `kith identity root-cert` wherever the tool allows it (litmus does not: it
//! accepts any certificate). Tools come from `scripts/setup --tests`; a missing one fails
//! the test with that advice rather than skipping it.

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use common::{Kith, PYTHON, dav_site as site};

/// A `kith serve contacts` process; killed when dropped.
struct Dav {
    child: Child,
    url: String,
    ca: PathBuf,
}

impl Dav {
    fn start(k: &Kith) -> Dav {
        let ca = k.dir.path().join("root.pem");
        std::fs::write(&ca, k.ok(&["identity", "root-cert"])).unwrap();
        let mut child = k
            .cmd(&["serve", "contacts", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.starts_with("https://") {
            line.clear();
            let n = stdout.read_line(&mut line).unwrap();
            assert!(n > 0, "kith serve contacts ended without serving");
        }
        Dav {
            child,
            url: line.trim().to_string(),
            ca,
        }
    }

    /// curl with the root as CA; returns (status, body).
    fn curl(&self, user: Option<&str>, method: &str, path: &str, extra: &[&str]) -> (u16, String) {
        let mut c = tool("curl");
        c.args(["-sS", "--cacert"]).arg(&self.ca);
        c.args(["-X", method, "-o", "-", "-w", "\n%{http_code}"]);
        if let Some(u) = user {
            c.args(["-u", &format!("{u}:{u}-pw")]);
        }
        c.args(extra)
            .arg(format!("{}{}", self.url, path.trim_start_matches('/')));
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.trim().parse().unwrap(), body.to_string())
    }

    fn mkcol(&self, user: &str, book: &str) {
        let (code, body) = self.curl(
            Some(user),
            "MKCOL",
            &format!("contacts/{user}/{book}/"),
            &[],
        );
        assert_eq!(code, 201, "{body}");
    }
}

impl Drop for Dav {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command for a tool that `scripts/setup --tests` installs; fails when it is missing.
fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(found, "`{name}` is missing: run scripts/setup --tests");
    Command::new(name)
}

fn python(script: &str, args: &[&str]) -> Output {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/dav")
        .join(script);
    let out = tool(PYTHON).arg(path).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn vcard(uid: &str, name: &str) -> String {
    format!(
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:{uid}\r\nFN:{name}\r\nN:{name};;;;\r\nEMAIL;TYPE=work:{uid}@example.org\r\nEND:VCARD\r\n"
    )
}

fn commits(k: &Kith) -> usize {
    k.json(&["log"]).as_array().unwrap().len()
}

#[test]
fn sign_in_and_other_users_data_are_enforced() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcol("ada", "default");
    let (code, _) = dav.curl(None, "PROPFIND", "contacts/ada/", &[]);
    assert_eq!(code, 401);
    let out = tool("curl")
        .args(["-sS", "-o", "/dev/null", "-D", "-", "--cacert"])
        .arg(&dav.ca)
        .args(["-u", "ada:wrong", "-X", "PROPFIND"])
        .arg(format!("{}contacts/ada/", dav.url))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(head.contains("www-authenticate: basic"), "{head}");
    for path in ["contacts/ada/", "contacts/ada/default/", "principals/ada/"] {
        let (code, _) = dav.curl(Some("bob"), "PROPFIND", path, &["-H", "Depth: 0"]);
        assert_eq!(code, 403, "bob reading {path}");
    }
    let (code, _) = dav.curl(
        Some("bob"),
        "PUT",
        "contacts/ada/default/x.vcf",
        &["--data-binary", &vcard("x", "X")],
    );
    assert_eq!(code, 403);
    let (code, body) = dav.curl(Some("ada"), "PROPFIND", "", &["-H", "Depth: 0"]);
    assert_eq!(code, 207);
    assert!(
        body.contains("<d:current-user-principal><d:href>/principals/ada/</d:href>"),
        "{body}"
    );
    let (code, _) = dav.curl(None, "GET", ".well-known/carddav", &[]);
    assert_eq!(code, 301);
    let status = k.json(&["status"]);
    let services = status["services"].as_array().unwrap();
    let contacts = services.iter().find(|s| s["name"] == "contacts").unwrap();
    assert_eq!(contacts["endpoints"][0].as_str().unwrap(), dav.url);
}

#[test]
fn malformed_requests_are_refused_and_store_nothing() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcol("ada", "default");
    let (code, _) = dav.curl(
        Some("ada"),
        "PUT",
        "contacts/ada/default/a.vcf",
        &["--data-binary", &vcard("a", "A")],
    );
    assert_eq!(code, 201);
    let before = commits(&k);
    let bad_xml: &[(&str, &str)] = &[
        ("PROPFIND", "<propfind xmlns=\"DAV:\"><prop>"),
        (
            "PROPPATCH",
            "<D:propertyupdate xmlns:D=\"DAV:\"><x:y/></D:propertyupdate>",
        ),
        ("REPORT", "not xml at all"),
        ("MKCOL", "<mkcol xmlns=\"DAV:\"><set>"),
    ];
    for (method, body) in bad_xml {
        let path = if *method == "MKCOL" {
            "contacts/ada/new/"
        } else {
            "contacts/ada/default/"
        };
        let (code, text) = dav.curl(Some("ada"), method, path, &["--data-binary", body]);
        assert!((400..500).contains(&code), "{method} {body}: {code} {text}");
    }
    let bad_cards = [
        "hello",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b\r\nFN:B\r\n",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:no uid\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:b\r\nthis is no content line\r\nEND:VCARD\r\n",
    ];
    for card in bad_cards {
        let (code, text) = dav.curl(
            Some("ada"),
            "PUT",
            "contacts/ada/default/b.vcf",
            &["--data-binary", card],
        );
        assert_eq!(code, 403, "{card:?}: {text}");
        assert!(text.contains("valid-address-data"), "{text}");
    }
    let (code, text) = dav.curl(
        Some("ada"),
        "PUT",
        "contacts/ada/default/other.vcf",
        &["--data-binary", &vcard("a", "Again")],
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("no-uid-conflict"), "{text}");
    let (code, _) = dav.curl(
        Some("ada"),
        "PUT",
        "contacts/ada/default/a.vcf",
        &[
            "--data-binary",
            &vcard("a", "A2"),
            "-H",
            "If-Match: \"nope\"",
        ],
    );
    assert_eq!(code, 412);
    let (code, _) = dav.curl(
        Some("ada"),
        "PUT",
        "contacts/ada/default/a.vcf",
        &["--data-binary", &vcard("a", "A2"), "-H", "If-None-Match: *"],
    );
    assert_eq!(code, 412);
    assert_eq!(commits(&k), before, "refused requests must not commit");
    assert_eq!(
        k.ok(&["get", "/contacts/ada/default/a.vcf"]),
        vcard("a", "A")
    );
}

#[test]
fn properties_reports_and_sync_tokens() {
    let k = site();
    let dav = Dav::start(&k);
    let mkcol = r#"<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><D:resourcetype><D:collection/><C:addressbook/></D:resourcetype><D:displayname>Friends</D:displayname></D:prop></D:set></D:mkcol>"#;
    let (code, _) = dav.curl(
        Some("ada"),
        "MKCOL",
        "contacts/ada/friends/",
        &["--data-binary", mkcol],
    );
    assert_eq!(code, 201);
    for i in 0..5 {
        let (code, _) = dav.curl(
            Some("ada"),
            "PUT",
            &format!("contacts/ada/friends/{i}.vcf"),
            &[
                "--data-binary",
                &vcard(&i.to_string(), &format!("Friend {i}")),
            ],
        );
        assert_eq!(code, 201);
    }
    let patch = r#"<D:propertyupdate xmlns:D="DAV:" xmlns:Z="urn:z"><D:set><D:prop><Z:mine>kept <b>as is</b></Z:mine><D:displayname>Close friends</D:displayname></D:prop></D:set></D:propertyupdate>"#;
    let (code, body) = dav.curl(
        Some("ada"),
        "PROPPATCH",
        "contacts/ada/friends/",
        &["--data-binary", patch],
    );
    assert_eq!(code, 207, "{body}");
    let (_, body) = dav.curl(Some("ada"), "PROPFIND", "contacts/ada/friends/", &["-H", "Depth: 0", "--data-binary", r#"<propfind xmlns="DAV:"><prop><displayname/><mine xmlns="urn:z"/><nothing xmlns="urn:z"/><getctag xmlns="http://calendarserver.org/ns/"/><sync-token/></prop></propfind>"#]);
    assert!(
        body.contains("<d:displayname>Close friends</d:displayname>"),
        "{body}"
    );
    assert!(body.contains("kept"), "{body}");
    assert!(body.contains("404 Not Found"), "{body}");
    assert_eq!(
        k.ok(&["get", "/contacts/ada/friends/displayname"]),
        "Close friends\n"
    );
    let token = between(&body, "<d:sync-token>", "</d:sync-token>");
    let ctag = between(&body, "<cs:getctag>", "</cs:getctag>");
    let (code, _) = dav.curl(
        Some("ada"),
        "PUT",
        "contacts/ada/friends/1.vcf",
        &["--data-binary", &vcard("1", "Changed")],
    );
    assert_eq!(code, 204);
    let (code, _) = dav.curl(Some("ada"), "DELETE", "contacts/ada/friends/2.vcf", &[]);
    assert_eq!(code, 204);
    let sync = format!(
        r#"<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"#
    );
    let (code, body) = dav.curl(
        Some("ada"),
        "REPORT",
        "contacts/ada/friends/",
        &["--data-binary", &sync],
    );
    assert_eq!(code, 207, "{body}");
    assert_eq!(body.matches("<d:response>").count(), 2, "{body}");
    assert!(
        body.contains("/contacts/ada/friends/1.vcf</d:href><d:propstat>"),
        "{body}"
    );
    assert!(
        body.contains("/contacts/ada/friends/2.vcf</d:href><d:status>HTTP/1.1 404"),
        "{body}"
    );
    let (_, again) = dav.curl(
        Some("ada"),
        "PROPFIND",
        "contacts/ada/friends/",
        &["-H", "Depth: 0"],
    );
    assert_ne!(between(&again, "<cs:getctag>", "</cs:getctag>"), ctag);
    k.ok(&[
        "put",
        "/contacts/ada/friends/9.vcf",
        "-m",
        "from another replica",
    ]);
    let (_, body) = dav.curl(
        Some("ada"),
        "PROPFIND",
        "contacts/ada/friends/",
        &["-H", "Depth: 1"],
    );
    assert!(
        body.contains("/contacts/ada/friends/9.vcf"),
        "a commit by another process shows at once"
    );
    let multiget = r#"<C:addressbook-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><C:address-data/></D:prop><D:href>/contacts/ada/friends/0.vcf</D:href><D:href>/contacts/ada/friends/2.vcf</D:href></C:addressbook-multiget>"#;
    let (code, body) = dav.curl(
        Some("ada"),
        "REPORT",
        "contacts/ada/friends/",
        &["--data-binary", multiget],
    );
    assert_eq!(code, 207);
    assert!(body.contains("FN:Friend 0&#13;\n"), "{body}");
    assert!(
        body.contains("2.vcf</d:href><d:status>HTTP/1.1 404"),
        "{body}"
    );
    let query = r#"<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/></D:prop><C:filter><C:prop-filter name="FN"><C:text-match match-type="starts-with">friend 3</C:text-match></C:prop-filter></C:filter></C:addressbook-query>"#;
    let (code, body) = dav.curl(
        Some("ada"),
        "REPORT",
        "contacts/ada/friends/",
        &["--data-binary", query],
    );
    assert_eq!(code, 207);
    assert_eq!(body.matches("<d:response>").count(), 1, "{body}");
    assert!(body.contains("3.vcf"), "{body}");
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap() + start.len();
    &text[from..from + text[from..].find(end).unwrap()]
}

/// Writes `n` small vCards named `<uid>.vcf` into `dir`.
fn write_cards(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let uid = format!("card-{i:04}");
        std::fs::write(
            dir.join(format!("{uid}.vcf")),
            vcard(&uid, &format!("Person {i}")),
        )
        .unwrap();
    }
}

fn vdirsyncer_config(dir: &Path, dav: &Dav, a: &Path, b: &Path) -> PathBuf {
    let remote = |name: &str| {
        format!(
            "[storage {name}]\ntype = \"carddav\"\nurl = \"{}contacts/ada/default/\"\nusername = \"ada\"\npassword = \"ada-pw\"\nverify = \"{}\"\n\n",
            dav.url,
            dav.ca.display()
        )
    };
    let local = |name: &str, path: &Path| {
        format!(
            "[storage {name}]\ntype = \"filesystem\"\npath = \"{}\"\nfileext = \".vcf\"\n\n",
            path.display()
        )
    };
    let text = format!(
        "[general]\nstatus_path = \"{}\"\n\n[pair up]\na = \"a\"\nb = \"remote_a\"\ncollections = null\nconflict_resolution = \"a wins\"\n\n[pair down]\na = \"b\"\nb = \"remote_b\"\ncollections = null\nconflict_resolution = \"a wins\"\n\n{}{}{}{}",
        dir.join("status").display(),
        local("a", a),
        local("b", b),
        remote("remote_a"),
        remote("remote_b"),
    );
    let path = dir.join("vdirsyncer.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn vdirsyncer(config: &Path, args: &[&str]) {
    let out = tool("vdirsyncer")
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "vdirsyncer {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The vCards of a vdir by file name.
fn vdir(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "vcf"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
}

#[test]
fn vdirsyncer_syncs_a_thousand_contacts_both_ways_and_khard_reads_them() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcol("ada", "default");
    let work = k.dir.path();
    let (a, b) = (work.join("a"), work.join("b"));
    write_cards(&a, 1000);
    std::fs::create_dir_all(&b).unwrap();
    let config = vdirsyncer_config(work, &dav, &a, &b);
    vdirsyncer(&config, &["discover"]);
    vdirsyncer(&config, &["sync", "up"]);
    vdirsyncer(&config, &["sync", "down"]);
    assert_eq!(vdir(&b), vdir(&a), "down gives what went up, byte for byte");
    for i in 0..20 {
        let uid = format!("card-{i:04}");
        std::fs::write(
            b.join(format!("{uid}.vcf")),
            vcard(&uid, &format!("Edited in B {i}")),
        )
        .unwrap();
        std::fs::remove_file(b.join(format!("card-{:04}.vcf", 100 + i))).unwrap();
        let uid = format!("card-{:04}", 500 + i);
        std::fs::write(
            a.join(format!("{uid}.vcf")),
            vcard(&uid, &format!("Edited in A {i}")),
        )
        .unwrap();
        std::fs::remove_file(a.join(format!("card-{:04}.vcf", 900 + i))).unwrap();
    }
    std::fs::write(a.join("new-in-a.vcf"), vcard("new-in-a", "New A")).unwrap();
    std::fs::write(b.join("new-in-b.vcf"), vcard("new-in-b", "New B")).unwrap();
    vdirsyncer(&config, &["sync", "down"]);
    vdirsyncer(&config, &["sync", "up"]);
    vdirsyncer(&config, &["sync", "down"]);
    let (va, vb) = (vdir(&a), vdir(&b));
    assert_eq!(va, vb, "both sides agree after syncing both ways");
    assert_eq!(va.len(), 1000 - 40 + 2);
    assert!(va["card-0003.vcf"].contains("Edited in B 3"));
    assert!(va["card-0503.vcf"].contains("Edited in A 3"));
    assert!(!va.contains_key("card-0105.vcf") && !va.contains_key("card-0905.vcf"));
    let exported = work.join("export");
    k.ok(&[
        "export",
        "/contacts/ada/default",
        exported.to_str().unwrap(),
    ]);
    assert_eq!(
        vdir(&exported),
        va,
        "the store holds exactly the synced bytes"
    );
    let khard_config = work.join("khard.conf");
    std::fs::write(
        &khard_config,
        format!(
            "[addressbooks]\n[[ada]]\npath = {}\n\n[general]\ndefault_action = list\n",
            exported.display()
        ),
    )
    .unwrap();
    let out = tool("khard")
        .arg("-c")
        .arg(&khard_config)
        .args(["list", "--parsable"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listed.lines().count(), 962, "{listed}");
    assert!(listed.contains("Edited in A 3"));
}

#[test]
fn python_caldav_library_address_book_operations() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcol("ada", "default");
    let out = python(
        "caldav_client.py",
        &[&dav.url, dav.ca.to_str().unwrap(), "ada", "ada-pw"],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok"), "{text}");
    assert!(k.ok(&["ls", "/contacts/ada/default"]).contains("py-1.vcf"));
}

#[test]
fn twenty_concurrent_clients_lose_nothing() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcol("ada", "default");
    let out = python(
        "concurrent.py",
        &[
            &dav.url,
            dav.ca.to_str().unwrap(),
            "ada",
            "ada-pw",
            "20",
            "10",
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("consistent"), "{text}");
    k.ok(&["fsck"]);
}

/// litmus cannot be told to verify the server certificate (it accepts any). Of its
/// `basic` suite, these pass; the others PUT plain files or make nested collections,
/// which an address book refuses (only vCards, no sub-collections), and litmus's other
/// suites need COPY/MOVE or locking (class 2), which Kith does not advertise.
#[test]
fn litmus_basic_tests_that_apply() {
    let k = site();
    let dav = Dav::start(&k);
    let url = format!("{}contacts/ada/", dav.url);
    let out = tool("litmus")
        .args(["-k", &url, "ada", "ada-pw"])
        .env("TESTS", "basic")
        .current_dir(k.dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let passing = [
        "begin",
        "options",
        "put_no_parent",
        "delete_null",
        "mkcol_no_parent",
        "mkcol_with_body",
        "finish",
    ];
    for test in passing {
        assert!(
            litmus_result(&text, test).contains("pass"),
            "litmus {test}:\n{text}"
        );
    }
}

/// The part of litmus's output that reports on `test` (its result may follow warnings on
/// later lines).
fn litmus_result<'a>(text: &'a str, test: &str) -> &'a str {
    const BASIC: &[&str] = &[
        "init",
        "begin",
        "options",
        "put_get",
        "put_get_utf8_segment",
        "put_no_parent",
        "mkcol_over_plain",
        "delete",
        "delete_null",
        "delete_fragment",
        "mkcol",
        "mkcol_again",
        "delete_coll",
        "mkcol_no_parent",
        "mkcol_with_body",
        "finish",
    ];
    let header = |name: &str| format!(". {name}.");
    let i = BASIC.iter().position(|t| *t == test).unwrap();
    let end = BASIC
        .get(i + 1)
        .and_then(|next| text.find(&header(next)))
        .unwrap_or(text.len());
    let start = text[..end]
        .rfind(&header(test))
        .unwrap_or_else(|| panic!("litmus did not run {test}:\n{text}"));
    &text[start..end]
}
