//! Mutual TLS over 127.0.0.1 with the verifiers: the user root only, nothing revoked.

use std::sync::Arc;

use kith_identity::verify::{self, Revocations};
use kith_identity::{Provider, keys, local};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::common::Fixture;

/// The board's certificate and key (its device identity).
fn board(f: &Fixture) -> (String, String) {
    let root = f.site.store.head_tree("main").unwrap();
    let cert = f
        .site
        .store
        .get(&root, "/identity/devices/board.pem")
        .unwrap()
        .unwrap();
    let key = f.site.local.read(local::DEVICE_KEY).unwrap().unwrap();
    (
        String::from_utf8(cert).unwrap(),
        String::from_utf8(key).unwrap(),
    )
}

/// One handshake: a server presenting `server_id`, a client presenting `client_id`, each
/// trusting `root` minus `revoked`. Returns the client's and the server's results.
fn handshake(
    f: &Fixture,
    root: &str,
    revoked: &Revocations,
    server_id: &(String, String),
    client_id: &(String, String),
    server_name: &'static str,
) -> (Result<(), String>, Result<(), String>) {
    let server_cfg =
        verify::server_config(root, revoked.clone(), &server_id.0, &server_id.1).unwrap();
    let client_cfg =
        verify::client_config(root, revoked.clone(), &client_id.0, &client_id.1).unwrap();
    f.rt.block_on(async move {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(server_cfg));
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            tls.write_all(b"pong").await.map_err(|e| e.to_string())?;
            tls.shutdown().await.map_err(|e| e.to_string())
        });
        let connector = TlsConnector::from(Arc::new(client_cfg));
        let name = ServerName::try_from(server_name).unwrap();
        let client = async {
            let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
            let mut tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| e.to_string())?;
            tls.write_all(b"ping").await.map_err(|e| e.to_string())?;
            let mut buf = [0u8; 4];
            tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            Ok(())
        }
        .await;
        (client, server.await.unwrap())
    })
}

#[test]
fn devices_of_the_same_root_connect_and_a_revoked_one_is_refused() {
    let f = Fixture::new();
    let root = f.site.root_cert().unwrap();
    let laptop = (f.laptop.certificate.clone(), f.laptop.key.clone());
    let board = board(&f);
    let revocations = Revocations::new(f.site.revoked().unwrap());
    let (client, server) = handshake(
        &f,
        &root,
        &revocations,
        &board,
        &laptop,
        "board.alice.home.arpa",
    );
    assert_eq!((client.clone(), server.clone()), (Ok(()), Ok(())));

    f.site.revoke_device("laptop", "board").unwrap();
    revocations.set(f.site.revoked().unwrap());
    // The board's client verifier refuses the laptop's certificate...
    let (_, server) = handshake(
        &f,
        &root,
        &revocations,
        &board,
        &laptop,
        "board.alice.home.arpa",
    );
    let err = server.unwrap_err();
    assert!(err.contains("Revoked") || err.contains("revoked"), "{err}");
    // ...and a client refuses a server presenting it.
    let (client, _) = handshake(
        &f,
        &root,
        &revocations,
        &laptop,
        &board,
        "laptop.alice.home.arpa",
    );
    let err = client.unwrap_err();
    assert!(err.contains("Revoked") || err.contains("revoked"), "{err}");
}

#[test]
fn a_certificate_from_another_root_is_refused() {
    let f = Fixture::new();
    let root = f.site.root_cert().unwrap();
    let provider = Provider::system();
    let stranger_root = keys::new_root("mallory.home.arpa", &provider).unwrap();
    let names = vec!["board.alice.home.arpa".to_string()];
    let forged = keys::issue(
        &stranger_root.cert_pem,
        &stranger_root.key_pem,
        &names,
        &provider,
    )
    .unwrap();
    let forged = (forged.cert_pem, forged.key_pem);
    let revocations = Revocations::default();
    let (client, _) = handshake(
        &f,
        &root,
        &revocations,
        &forged,
        &board(&f),
        "board.alice.home.arpa",
    );
    let err = client.unwrap_err();
    assert!(err.contains("UnknownIssuer"), "{err}");
}
