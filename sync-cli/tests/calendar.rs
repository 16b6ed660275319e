//! `kith serve calendar` as a real process on 127.0.0.1, driven by real clients: curl,
//! the python `caldav` library, vdirsyncer and khal, and a differential check of
//! time-range queries against python `recurring_ical_events`. Clients verify TLS against
//! `kith identity root-cert`. Tools come from `scripts/setup --tests`; a missing one
//! fails the test with that advice rather than skipping it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use common::{Kith, PYTHON, dav_site as site};

/// A `kith serve calendar` process; killed when dropped.
struct Dav {
    child: Child,
    url: String,
    ca: PathBuf,
}

impl Dav {
    fn start(k: &Kith) -> Dav {
        let ca = k.dir.path().join("root.pem");
        std::fs::write(&ca, k.ok(&["identity", "root-cert"])).unwrap();
        let (child, url) = k.spawn_service(&["serve", "calendar", "--listen", "127.0.0.1:0"]);
        assert!(
            url.starts_with("https://"),
            "kith serve calendar printed {url:?}"
        );
        Dav { child, url, ca }
    }

    /// curl with the root as CA, signed in as `user` (password `<user>-pw`); returns
    /// (status, body).
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

    fn mkcalendar(&self, user: &str, cal: &str) {
        let (code, body) = self.curl(
            Some(user),
            "MKCALENDAR",
            &format!("calendar/{user}/{cal}/"),
            &[],
        );
        assert_eq!(code, 201, "{body}");
    }

    fn put(&self, user: &str, path: &str, body: &str) -> (u16, String) {
        self.curl(
            Some(user),
            "PUT",
            path,
            &["-H", "Content-Type: text/calendar", "--data-binary", body],
        )
    }

    /// The python script `name` in tests/, with the URL, CA, user and password first.
    fn python(&self, script: &str, user: &str, args: &[&str]) -> Output {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(script);
        let password = format!("{user}-pw");
        let out = tool(PYTHON)
            .arg(path)
            .arg(&self.url)
            .arg(&self.ca)
            .args([user, password.as_str()])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
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

fn head(k: &Kith) -> String {
    k.json(&["log"])[0]["commit"].to_string()
}

fn event(uid: &str, summary: &str, start: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kith tests//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/calendar/corpus")
}

#[test]
fn time_ranges_agree_with_recurring_ical_events() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcalendar("ada", "diff");
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let body = std::fs::read_to_string(&path).unwrap();
        let (code, text) = dav.put("ada", &format!("calendar/ada/diff/{name}"), &body);
        assert_eq!(code, 201, "{name}: {text}");
    }
    let corpus = corpus();
    let out = dav.python(
        "calendar/differential.py",
        "ada",
        &["/calendar/ada/diff/", corpus.to_str().unwrap()],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains(" 0 disagreements"), "{report}");
}

#[test]
fn sign_in_isolation_and_refusals_leave_the_store_alone() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcalendar("ada", "home");
    dav.mkcalendar("bob", "work");
    let (code, _) = dav.curl(None, "PROPFIND", "calendar/ada/", &[]);
    assert_eq!(code, 401);
    let out = tool("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert"])
        .arg(&dav.ca)
        .args(["-u", "ada:wrong", "-X", "PROPFIND"])
        .arg(format!("{}calendar/ada/", dav.url))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
    for (method, path) in [
        ("PROPFIND", "calendar/bob/work/"),
        ("GET", "calendar/bob/work/x.ics"),
        ("MKCALENDAR", "calendar/bob/new/"),
    ] {
        let (code, _) = dav.curl(Some("ada"), method, path, &[]);
        assert_eq!(code, 403, "{method} {path}");
    }
    let (code, _) = dav.put(
        "ada",
        "calendar/bob/work/e.ics",
        &event("e", "x", "20260101T100000Z"),
    );
    assert_eq!(code, 403);

    let before = head(&k);
    let good = event("e1", "Lunch", "20260101T120000Z");
    let bad_cases = [
        (
            "calendar/ada/home/a.ics",
            "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n".to_string(),
        ),
        ("calendar/ada/home/b.ics", "not a calendar".to_string()),
        ("calendar/ada/home/c.ics", good.replace("UID:e1\r\n", "")),
        (
            "calendar/ada/home/d.ics",
            good.replace("DURATION:PT1H", "RRULE:FREQ=OFTEN"),
        ),
        (
            "calendar/ada/home/e.ics",
            good.replace(
                "END:VCALENDAR",
                "BEGIN:VTODO\r\nUID:other\r\nEND:VTODO\r\nEND:VCALENDAR",
            ),
        ),
        ("calendar/ada/nowhere/f.ics", good.clone()),
        ("calendar/ada/home/g.txt", good.clone()),
    ];
    for (path, body) in &bad_cases {
        let (code, text) = dav.put("ada", path, body);
        assert!((400..500).contains(&code), "{path}: {code} {text}");
    }
    let (code, body) = dav.curl(
        Some("ada"),
        "REPORT",
        "calendar/ada/home/",
        &[
            "--data-binary",
            "<C:calendar-query xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><C:filter>",
        ],
    );
    assert_eq!(code, 400, "{body}");
    let (code, _) = dav.curl(
        Some("ada"),
        "MKCALENDAR",
        "calendar/ada/x/",
        &[
            "--data-binary",
            "<C:mkcalendar xmlns:C=\"urn:ietf:params:xml:ns:caldav\">",
        ],
    );
    assert!((400..500).contains(&code));
    assert_eq!(head(&k), before, "refused requests did not commit");

    assert_eq!(dav.put("ada", "calendar/ada/home/e1.ics", &good).0, 201);
    let (code, body) = dav.put("ada", "calendar/ada/home/other.ics", &good);
    assert_eq!(code, 403);
    assert!(body.contains("no-uid-conflict"), "{body}");
    let (code, body) = dav.curl(Some("ada"), "GET", "calendar/ada/home/e1.ics", &[]);
    assert_eq!((code, body), (200, good), "byte for byte as PUT");
}

#[test]
fn mkcalendar_properties_and_component_sets() {
    let k = site();
    let dav = Dav::start(&k);
    let mk = r#"<?xml version="1.0"?><C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop><D:displayname>Tasks</D:displayname><A:calendar-color>#ff0000</A:calendar-color><C:calendar-description>Things to do</C:calendar-description><A:calendar-order>3</A:calendar-order><C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set></D:prop></D:set></C:mkcalendar>"#;
    let (code, body) = dav.curl(
        Some("ada"),
        "MKCALENDAR",
        "calendar/ada/tasks/",
        &["--data-binary", mk],
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = dav.put(
        "ada",
        "calendar/ada/tasks/e.ics",
        &event("e", "x", "20260101T100000Z"),
    );
    assert_eq!(code, 403);
    assert!(body.contains("supported-calendar-component"), "{body}");
    let todo = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VTODO\r\nUID:t1\r\nSUMMARY:Milk\r\nEND:VTODO\r\nEND:VCALENDAR\r\n";
    assert_eq!(dav.put("ada", "calendar/ada/tasks/t1.ics", todo).0, 201);
    let (code, body) = dav.curl(
        Some("ada"),
        "PROPFIND",
        "calendar/ada/tasks/",
        &["-H", "Depth: 0"],
    );
    assert_eq!(code, 207);
    for want in [
        "Tasks",
        "#ff0000",
        "Things to do",
        "VTODO",
        "calendar-order",
        "getctag",
        "max-resource-size",
        "<cal:calendar>",
    ] {
        assert!(body.contains(want), "{want} missing in {body}");
    }
    assert!(!body.contains("VEVENT"), "{body}");
    let (code, body) = dav.curl(
        Some("ada"),
        "PROPFIND",
        "principals/ada/",
        &["-H", "Depth: 0"],
    );
    assert_eq!(code, 207);
    assert!(
        body.contains("calendar-home-set") && body.contains("/calendar/ada/"),
        "{body}"
    );
    let (code, _) = dav.curl(None, "GET", ".well-known/caldav", &[]);
    assert_eq!(code, 301);

    let exported = k.dir.path().join("export");
    k.ok(&["export", "/calendar/ada/tasks", exported.to_str().unwrap()]);
    let read = |f: &str| std::fs::read_to_string(exported.join(f)).unwrap();
    assert_eq!(read("displayname"), "Tasks\n");
    assert_eq!(read("color"), "#ff0000\n");
    assert_eq!(read("t1.ics"), todo);
    let imported = k.dir.path().join("import");
    std::fs::create_dir_all(&imported).unwrap();
    std::fs::write(
        imported.join("e2.ics"),
        event("e2", "Imported", "20260301T100000Z"),
    )
    .unwrap();
    k.ok(&[
        "import",
        imported.to_str().unwrap(),
        "/calendar/ada/imported",
    ]);
    let (code, body) = dav.curl(Some("ada"), "GET", "calendar/ada/imported/e2.ics", &[]);
    assert_eq!(code, 200);
    assert!(body.contains("SUMMARY:Imported"));
}

#[test]
fn floating_times_follow_the_calendar_timezone() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcalendar("ada", "home");
    let floating = event("f", "Floating", "20260110T100000");
    assert_eq!(dav.put("ada", "calendar/ada/home/f.ics", &floating).0, 201);
    let query = |start: &str, end: &str| {
        let q = format!(
            r#"<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"#
        );
        let (code, body) = dav.curl(
            Some("ada"),
            "REPORT",
            "calendar/ada/home/",
            &["--data-binary", &q],
        );
        assert_eq!(code, 207, "{body}");
        body.contains("f.ics")
    };
    assert!(
        query("20260110T100000Z", "20260110T103000Z"),
        "UTC without a calendar zone"
    );
    let tz = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nEND:VTIMEZONE\r\nEND:VCALENDAR";
    let patch = format!(
        r#"<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><C:calendar-timezone>{tz}</C:calendar-timezone></D:prop></D:set></D:propertyupdate>"#
    );
    let (code, body) = dav.curl(
        Some("ada"),
        "PROPPATCH",
        "calendar/ada/home/",
        &["--data-binary", &patch],
    );
    assert_eq!(code, 207, "{body}");
    assert!(!query("20260110T100000Z", "20260110T103000Z"));
    assert!(
        query("20260110T090000Z", "20260110T093000Z"),
        "10:00 in Berlin is 09:00Z"
    );
}

#[test]
fn free_busy_query_answers_with_a_vfreebusy() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcalendar("ada", "home");
    assert_eq!(
        dav.put(
            "ada",
            "calendar/ada/home/a.ics",
            &event("a", "Busy", "20260105T100000Z")
        )
        .0,
        201
    );
    let q = r#"<C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav"><C:time-range start="20260105T000000Z" end="20260106T000000Z"/></C:free-busy-query>"#;
    let (code, body) = dav.curl(
        Some("ada"),
        "REPORT",
        "calendar/ada/home/",
        &["--data-binary", q],
    );
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("BEGIN:VFREEBUSY")
            && body.contains("FREEBUSY:20260105T100000Z/20260105T110000Z"),
        "{body}"
    );
}

#[test]
fn python_caldav_library_calendars_events_todos_and_sync() {
    let k = site();
    let dav = Dav::start(&k);
    let out = dav.python("dav/caldav_calendar.py", "ada", &[]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

/// Event `i` of the vdirsyncer run: on day `i % 300` of 2026 at 10:00Z; every tenth one
/// weekly for ten weeks.
fn numbered(i: usize, title: &str) -> String {
    let start = chrono_day(i % 300);
    let rule = if i.is_multiple_of(10) {
        "RRULE:FREQ=WEEKLY;COUNT=10\r\n"
    } else {
        ""
    };
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Kith tests//EN\r\nBEGIN:VEVENT\r\nUID:ev-{i:04}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}T100000Z\r\nDURATION:PT1H\r\n{rule}SUMMARY:{title}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

/// `YYYYMMDD` of day `n` (0-based) of 2026.
fn chrono_day(n: usize) -> String {
    let months = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let (mut month, mut day) = (0, n);
    while day >= months[month] {
        day -= months[month];
        month += 1;
    }
    format!("2026{:02}{:02}", month + 1, day + 1)
}

fn vdir(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), text)
        })
        .collect()
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

fn vdirsyncer_config(dir: &Path, dav: &Dav, a: &Path, b: &Path) -> PathBuf {
    let remote = |name: &str| {
        format!(
            "[storage {name}]\ntype = \"caldav\"\nurl = \"{}calendar/ada/home/\"\nusername = \"ada\"\npassword = \"ada-pw\"\nverify = \"{}\"\n\n",
            dav.url,
            dav.ca.display()
        )
    };
    let local = |name: &str, path: &Path| {
        format!(
            "[storage {name}]\ntype = \"filesystem\"\npath = \"{}\"\nfileext = \".ics\"\n\n",
            path.display()
        )
    };
    let pair = |name: &str, a: &str, b: &str| {
        format!(
            "[pair {name}]\na = \"{a}\"\nb = \"{b}\"\ncollections = null\nconflict_resolution = \"a wins\"\n\n"
        )
    };
    let text = format!(
        "[general]\nstatus_path = \"{}\"\n\n{}{}{}{}{}{}",
        dir.join("status").display(),
        pair("up", "a", "remote_a"),
        pair("down", "b", "remote_b"),
        local("a", a),
        local("b", b),
        remote("remote_a"),
        remote("remote_b"),
    );
    let path = dir.join("vdirsyncer.conf");
    std::fs::write(&path, text).unwrap();
    path
}

/// `khal list` of the week starting 2 March 2026 over the vdir `dir`, as sorted
/// "date title" lines.
fn khal_week(work: &Path, dir: &Path) -> Vec<String> {
    let config = work.join("khal.conf");
    std::fs::write(
        &config,
        format!(
            "[calendars]\n[[home]]\npath = {}\ntype = calendar\n\n[sqlite]\npath = {}\n\n[locale]\ntimeformat = %H:%M\ndateformat = %Y-%m-%d\nlongdateformat = %Y-%m-%d\ndatetimeformat = %Y-%m-%d %H:%M\nlongdatetimeformat = %Y-%m-%d %H:%M\nlocal_timezone = UTC\ndefault_timezone = UTC\n",
            dir.display(),
            work.join("khal.db").display()
        ),
    )
    .unwrap();
    let out = tool("khal")
        .arg("-c")
        .arg(&config)
        .args([
            "list",
            "--day-format",
            "",
            "--format",
            "{start-date} {title}",
            "2026-03-02",
            "7d",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "khal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[test]
fn vdirsyncer_syncs_a_thousand_events_both_ways_and_khal_lists_the_week() {
    let k = site();
    let dav = Dav::start(&k);
    dav.mkcalendar("ada", "home");
    let work = k.dir.path();
    let (a, b) = (work.join("a"), work.join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let mut titles: Vec<Option<String>> = (0..1000).map(|i| Some(format!("Event {i}"))).collect();
    for (i, t) in titles.iter().enumerate() {
        let t = t.as_deref().unwrap();
        std::fs::write(a.join(format!("ev-{i:04}.ics")), numbered(i, t)).unwrap();
    }
    let config = vdirsyncer_config(work, &dav, &a, &b);
    vdirsyncer(&config, &["discover"]);
    vdirsyncer(&config, &["sync", "up"]);
    vdirsyncer(&config, &["sync", "down"]);
    assert_eq!(vdir(&b), vdir(&a), "down gives what went up, byte for byte");
    let mut edit = |dir: &Path, i: usize, title: Option<String>| {
        let path = dir.join(format!("ev-{i:04}.ics"));
        match &title {
            Some(t) => std::fs::write(&path, numbered(i, t)).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
        titles[i] = title;
    };
    for i in 0..20 {
        edit(&b, 60 + i, Some(format!("Edited in B {i}")));
        edit(&b, 100 + i, None);
        edit(&a, 360 + i, Some(format!("Edited in A {i}")));
        edit(&a, 900 + i, None);
    }
    vdirsyncer(&config, &["sync", "down"]);
    vdirsyncer(&config, &["sync", "up"]);
    vdirsyncer(&config, &["sync", "down"]);
    assert_eq!(vdir(&a), vdir(&b), "both sides converge");
    assert_eq!(vdir(&a).len(), 960);

    let mut want = Vec::new();
    for (i, title) in titles.iter().enumerate() {
        let Some(title) = title else { continue };
        let repeats = if i.is_multiple_of(10) { 10 } else { 1 };
        for n in (0..repeats)
            .map(|w| i % 300 + 7 * w)
            .filter(|d| (60..67).contains(d))
        {
            let d = chrono_day(n);
            want.push(format!("{}-{}-{} {title}", &d[..4], &d[4..6], &d[6..]));
        }
    }
    want.sort();
    assert!(want.len() > 20, "the week has events: {want:?}");
    assert_eq!(khal_week(work, &b), want);
}
