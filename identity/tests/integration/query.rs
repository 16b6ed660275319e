//! Queries with kdig over UDP and TCP, and the server's limits.

use std::io::Read as _;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use hickory_proto::op::{Message, OpCode};
use hickory_proto::rr::{Name, RecordType};
use kith_identity::dns::net::Config;
use kith_identity::resolve::Resolver;

use crate::common::{Fixture, flags, section, status};

#[test]
fn kdig_gets_every_record_type_over_udp_and_tcp() {
    let f = Fixture::new();
    let cases = [
        ("alice.home.arpa", "SOA"),
        ("alice.home.arpa", "NS"),
        ("board.alice.home.arpa", "A"),
        ("board.alice.home.arpa", "AAAA"),
        ("alice.home.arpa", "MX"),
        ("_submissions._tcp.alice.home.arpa", "SRV"),
        ("_submission._tcp.alice.home.arpa", "SRV"),
        ("_imaps._tcp.alice.home.arpa", "SRV"),
        ("_caldavs._tcp.alice.home.arpa", "SRV"),
        ("_caldavs._tcp.alice.home.arpa", "TXT"),
        ("_carddavs._tcp.alice.home.arpa", "TXT"),
        ("_kith-sync._tcp.alice.home.arpa", "SRV"),
        ("alice.home.arpa", "TXT"),
        ("_dmarc.alice.home.arpa", "TXT"),
        ("kith._domainkey.alice.home.arpa", "TXT"),
        ("_993._tcp.board.alice.home.arpa", "TLSA"),
        ("_7447._tcp.board.alice.home.arpa", "TLSA"),
    ];
    for transport in ["+notcp", "+tcp"] {
        for (name, rtype) in cases {
            let out = f.kdig(&[transport, name, rtype]);
            assert_eq!(
                status(&out),
                "NOERROR",
                "{name} {rtype} {transport}:\n{out}"
            );
            assert!(flags(&out).contains("aa"), "{out}");
            let answers = section(&out, "ANSWER");
            assert!(
                answers
                    .iter()
                    .any(|l| l.split_whitespace().nth(3) == Some(rtype)),
                "{name} {rtype} {transport}:\n{out}"
            );
        }
    }
    let spf = f.kdig(&["alice.home.arpa", "TXT"]);
    assert!(spf.contains("\"v=spf1 mx -all\""), "{spf}");
    let dkim = f.kdig(&["kith._domainkey.alice.home.arpa", "TXT"]);
    assert!(dkim.contains("v=DKIM1; k=ed25519; p="), "{dkim}");
    let caldav = f.kdig(&["_caldavs._tcp.alice.home.arpa", "TXT"]);
    assert!(caldav.contains("\"path=/.well-known/caldav\""), "{caldav}");
}

#[test]
fn a_small_edns_buffer_truncates_and_tcp_gets_the_whole_answer() {
    let f = Fixture::new();
    let big: String = (0..40)
        .map(|i| {
            format!("big.alice.home.arpa. 300 IN TXT \"record {i:02} padding padding padding\"\n")
        })
        .collect();
    f.put_zone_file("big", &big);
    assert!(f.eventually(|| status(&f.kdig(&["+tcp", "big.alice.home.arpa", "TXT"])) == "NOERROR"));
    let udp = f.kdig(&[
        "+notcp",
        "+ignore",
        "+bufsize=512",
        "big.alice.home.arpa",
        "TXT",
    ]);
    assert!(flags(&udp).contains("tc"), "expected TC:\n{udp}");
    assert!(section(&udp, "ANSWER").is_empty(), "{udp}");
    let retry = f.kdig(&["+bufsize=512", "big.alice.home.arpa", "TXT"]);
    assert_eq!(
        section(&retry, "ANSWER").len(),
        40,
        "kdig retries over TCP:\n{retry}"
    );
    assert!(retry.contains("(TCP)"), "{retry}");
    let tcp = f.kdig(&["+tcp", "big.alice.home.arpa", "TXT"]);
    assert_eq!(section(&tcp, "ANSWER").len(), 40, "{tcp}");
    let fits = f.kdig(&["+notcp", "+bufsize=4096", "board.alice.home.arpa", "A"]);
    assert!(!flags(&fits).contains("tc"), "{fits}");
}

#[test]
fn nxdomain_and_nodata_carry_the_soa() {
    let f = Fixture::new();
    let nx = f.kdig(&["nope.alice.home.arpa", "A"]);
    assert_eq!(status(&nx), "NXDOMAIN", "{nx}");
    assert!(section(&nx, "AUTHORITY")[0].contains("SOA"), "{nx}");
    let nodata = f.kdig(&["board.alice.home.arpa", "MX"]);
    assert_eq!(status(&nodata), "NOERROR", "{nodata}");
    assert!(section(&nodata, "ANSWER").is_empty(), "{nodata}");
    assert!(section(&nodata, "AUTHORITY")[0].contains("SOA"), "{nodata}");
    // `_tcp.alice.home.arpa` owns nothing but has names below it: NODATA, not NXDOMAIN.
    let empty_non_terminal = f.kdig(&["_tcp.alice.home.arpa", "A"]);
    assert_eq!(
        status(&empty_non_terminal),
        "NOERROR",
        "{empty_non_terminal}"
    );
    assert!(section(&empty_non_terminal, "AUTHORITY")[0].contains("SOA"));
}

#[test]
fn other_zones_are_refused() {
    let f = Fixture::new();
    for name in ["example.com", "home.arpa", "bob.home.arpa", "."] {
        let out = f.kdig(&[name, "A"]);
        assert_eq!(status(&out), "REFUSED", "{name}:\n{out}");
    }
}

#[test]
fn names_are_case_insensitive() {
    let f = Fixture::new();
    let out = f.kdig(&["BoArD.ALICE.home.ARPA", "A"]);
    assert_eq!(status(&out), "NOERROR", "{out}");
    assert!(section(&out, "ANSWER")[0].contains("127.0.0.1"), "{out}");
}

#[test]
fn cnames_and_wildcards_follow_rfc_1034_and_4592() {
    let f = Fixture::new();
    f.put_zone_file(
        "www",
        "www.alice.home.arpa. 300 IN CNAME board.alice.home.arpa.\n",
    );
    f.put_zone_file("*.dyn", "*.dyn.alice.home.arpa. 300 IN A 192.0.2.9\n");
    f.put_zone_file("x.dyn", "x.dyn.alice.home.arpa. 300 IN TXT \"x\"\n");
    f.put_zone_file("out", "out.alice.home.arpa. 300 IN CNAME example.com.\n");
    assert!(f.eventually(|| status(&f.kdig(&["www.alice.home.arpa", "A"])) == "NOERROR"));
    let www = f.kdig(&["www.alice.home.arpa", "A"]);
    let answers = section(&www, "ANSWER");
    assert!(
        answers[0].contains("CNAME") && answers[1].contains("127.0.0.1"),
        "{www}"
    );
    let cname = f.kdig(&["www.alice.home.arpa", "CNAME"]);
    assert_eq!(section(&cname, "ANSWER").len(), 1, "{cname}");
    let outside = f.kdig(&["out.alice.home.arpa", "A"]);
    assert_eq!(
        section(&outside, "ANSWER").len(),
        1,
        "not followed out of zone: {outside}"
    );
    // A wildcard answers names that do not exist, with the query name as owner...
    let wild = f.kdig(&["a.b.dyn.alice.home.arpa", "A"]);
    assert_eq!(status(&wild), "NOERROR", "{wild}");
    assert!(
        section(&wild, "ANSWER")[0].starts_with("a.b.dyn.alice.home.arpa."),
        "{wild}"
    );
    // ...but not names that exist (x.dyn has a TXT, so its A is NODATA)...
    let exists = f.kdig(&["x.dyn.alice.home.arpa", "A"]);
    assert_eq!(status(&exists), "NOERROR", "{exists}");
    assert!(section(&exists, "ANSWER").is_empty(), "{exists}");
    // ...nor names whose closest encloser has no wildcard.
    let no_wild = f.kdig(&["a.x.alice.home.arpa", "A"]);
    assert_eq!(status(&no_wild), "NXDOMAIN", "{no_wild}");
}

#[test]
fn a_commit_changes_answers_and_the_serial_without_restart() {
    let f = Fixture::new();
    let serial = |out: &str| -> u32 {
        let line = section(out, "ANSWER")[0];
        line.split_whitespace().nth(6).unwrap().parse().unwrap()
    };
    let before = serial(&f.kdig(&["alice.home.arpa", "SOA"]));
    f.put_zone_file("new", "new.alice.home.arpa. 300 IN A 192.0.2.44\n");
    assert!(f.eventually(|| f.kdig(&["new.alice.home.arpa", "A"]).contains("192.0.2.44")));
    let after = serial(&f.kdig(&["alice.home.arpa", "SOA"]));
    assert!(after > before, "serial {before} -> {after}");
}

#[test]
fn notify_goes_to_secondaries_when_the_serial_changes() {
    let secondary = UdpSocket::bind("127.0.0.1:0").unwrap();
    secondary
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let config = Config {
        notify: vec![secondary.local_addr().unwrap()],
        ..Config::default()
    };
    let f = Fixture::with_config(config);
    f.put_zone_file("n", "n.alice.home.arpa. 300 IN A 192.0.2.45\n");
    let mut buf = [0u8; 4096];
    let (len, _) = secondary.recv_from(&mut buf).expect("a NOTIFY arrives");
    let msg = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(msg.metadata.op_code, OpCode::Notify);
    assert_eq!(msg.queries[0].query_type(), RecordType::SOA);
    assert_eq!(msg.queries[0].name().to_string(), "alice.home.arpa.");
}

#[test]
fn tcp_connections_are_limited_and_idle_ones_closed() {
    let config = Config {
        tcp_max_connections: 2,
        tcp_idle: Duration::from_millis(300),
        ..Config::default()
    };
    let f = Fixture::with_config(config);
    let open = |_| TcpStream::connect(f.addr()).unwrap();
    let held: Vec<TcpStream> = (0..2).map(open).collect();
    std::thread::sleep(Duration::from_millis(50));
    let mut extra = TcpStream::connect(f.addr()).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        extra.read(&mut buf).unwrap(),
        0,
        "the third connection is closed"
    );
    for mut conn in held {
        conn.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        assert_eq!(
            conn.read(&mut buf).unwrap(),
            0,
            "idle connections are closed"
        );
    }
    let out = f.kdig(&["+tcp", "board.alice.home.arpa", "A"]);
    assert_eq!(status(&out), "NOERROR", "slots free again:\n{out}");
}

#[test]
fn the_resolver_finds_a_service_with_its_addresses_and_tlsa() {
    let f = Fixture::new();
    let resolver = Resolver::new(f.addr());
    let srv = Name::from_ascii("_kith-sync._tcp.alice.home.arpa.").unwrap();
    let endpoints = resolver.service(&srv).unwrap();
    assert_eq!(endpoints.len(), 1);
    let e = &endpoints[0];
    assert_eq!(e.host.to_string(), "board.alice.home.arpa.");
    assert_eq!(e.port, 7447);
    assert_eq!(e.addresses.len(), 2);
    assert_eq!(e.tlsa.len(), 1);
    assert_eq!(e.tlsa[0].len(), 32);
}

#[test]
fn udp_responses_are_rate_limited_with_slips_to_tcp() {
    use hickory_proto::op::Query;
    let config = Config {
        rrl: Some((5, 5, 2)),
        ..Config::default()
    };
    let f = Fixture::with_config(config);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let name = Name::from_ascii("board.alice.home.arpa.").unwrap();
    for id in 0..30u16 {
        let mut query = Message::query();
        query.metadata.id = id;
        query.add_query(Query::query(name.clone(), RecordType::A));
        socket.send_to(&query.to_vec().unwrap(), f.addr()).unwrap();
    }
    let (mut full, mut truncated) = (0, 0);
    let mut buf = [0u8; 2048];
    while let Ok((len, _)) = socket.recv_from(&mut buf) {
        let msg = Message::from_vec(&buf[..len]).unwrap();
        if msg.metadata.truncation {
            truncated += 1;
        } else {
            full += 1;
        }
    }
    assert!((5..=7).contains(&full), "{full} full answers");
    assert!((10..=14).contains(&truncated), "{truncated} slipped");
    // TCP is not limited.
    let out = f.kdig(&["+tcp", "board.alice.home.arpa", "A"]);
    assert!(out.contains("127.0.0.1"), "{out}");
}
