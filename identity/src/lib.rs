//! kith-identity holds the user's and devices' keys and certificates, the DNS zone, its
//! authoritative server, signed updates, and resolving peers.
//!
//! A Kith user's identity is a DNS zone they own (`<user>.home.arpa` for local trials).
//! A user root key (Ed25519) signs a certificate for every device and service
//! ([`keys`]); the [`verify`] module gives rustls verifiers that accept only those, so
//! every Kith-to-Kith link is mutual TLS against the user's own root. The zone
//! ([`zone`]) lives in kith-store under `/identity/`, so it versions and syncs like the
//! rest; [`dns`] serves it authoritatively from memory and follows the store's commits,
//! and [`update`] lets a device change its own records with RFC 2136 updates signed by
//! its TSIG key, each one a commit. [`link`] makes the mutual-TLS connections replicas
//! sync over, [`sync_service`] serves the store's sync protocol on them, and
//! [`sync_client`] fetches, merges and pushes through them. [`resolve`]
//! finds a service or device through the zone. Private keys never enter the store: they stay in the replica's [`local`] state.
//!
//! Neighbours: kith-store below (this crate reads and commits through its `Store`); the
//! apps above take their certificates and verifiers from here; the `kith` CLI (sync-cli)
//! runs `kith init --zone`, `kith device`, `kith identity` and `kith serve dns` on it.
//! Time and entropy come through a [`Provider`], so tests and the unikernel bring their
//! own.

pub mod dns;
pub mod enroll;
mod error;
pub mod keys;
pub mod link;
pub mod local;
pub mod provider;
pub mod resolve;
pub mod sync_client;
pub mod sync_service;
pub mod update;
pub mod verify;
pub mod zone;

pub use enroll::{Bundle, Revoked, Site, TsigKey};
pub use error::{Error, Result};
pub use provider::Provider;
pub use zone::Zone;
