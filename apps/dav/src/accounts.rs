//! Accounts for the DAV services: user names and argon2 password hashes in the store.
//!
//! Each account is one file, `/identity/users/<name>`, holding the PHC string of the
//! password's argon2id hash, so accounts sync to every replica with the rest of the
//! identity. Checking a password runs argon2 once; afterwards a keyed blake3 of the
//! password (the key lives only in this process's memory) stands in for it until the
//! account file changes, so clients that send Basic credentials on every request cost a
//! hash, not an argon2 run. Passwords are never logged or stored in the clear.
//!
//! New hashes use argon2id with 7 MiB, 5 passes and 1 lane: of the settings OWASP's
//! password storage cheat sheet lists as equally strong (19 MiB and 2 passes is
//! argon2's default), the one that needs least memory, so a service image signs users
//! in within 32 MiB. Hashes keep the settings they were made with; one argon2 run
//! happens at a time, so a burst of sign-ins cannot add up their memory.

use std::collections::HashMap;
use std::sync::Mutex;

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use kith_store::{Hash, Store};

use crate::error::{Error, Result};

/// Memory of a new hash, in KiB (7 MiB).
const HASH_MEMORY_KIB: u32 = 7 * 1024;
/// Passes of a new hash over its memory.
const HASH_PASSES: u32 = 5;

/// Serialises argon2 runs: each holds its whole memory while it runs.
static ARGON2_RUN: Mutex<()> = Mutex::new(());

/// Where accounts live in the store.
pub const USERS: &str = "/identity/users";

/// The store path of one account.
pub fn user_path(name: &str) -> String {
    format!("{USERS}/{name}")
}

/// Checks a user name: 1 to 64 of `a-z 0-9 - _ .`, not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    ok.then_some(()).ok_or_else(|| Error::BadUser(name.into()))
}

/// The argon2id PHC string of a password, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String> {
    if password.is_empty() {
        return Err(Error::EmptyPassword);
    }
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::new(HASH_MEMORY_KIB, HASH_PASSES, 1, None)
        .map_err(|e| Error::Hash(e.to_string()))?;
    let _one_at_a_time = ARGON2_RUN.lock().unwrap_or_else(|e| e.into_inner());
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Hash(e.to_string()))
}

/// Creates (`create`) or changes the password of an account, as one commit.
pub fn set_password(
    store: &Store,
    branch: &str,
    name: &str,
    password: &str,
    create: bool,
    author: &str,
) -> Result<()> {
    check_name(name)?;
    let phc = hash_password(password)?;
    let mut tx = store.transaction(branch)?;
    let exists = store.find(&tx.base_tree(), &user_path(name))?.is_some();
    match (create, exists) {
        (true, true) => return Err(Error::UserExists(name.into())),
        (false, false) => return Err(Error::NoUser(name.into())),
        _ => {}
    }
    tx.put(&user_path(name), format!("{phc}\n").as_bytes())?;
    let verb = if create {
        "add"
    } else {
        "change the password of"
    };
    tx.commit(author, &format!("users: {verb} {name}"))?;
    Ok(())
}

/// The account names on a branch, sorted.
pub fn list(store: &Store, branch: &str) -> Result<Vec<String>> {
    let root = store.head_tree(branch)?;
    Ok(store
        .list(&root, USERS)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// A password check against the accounts at `branch`'s head (`kith user add`), for
/// services outside DAV that sign users in (mail's SMTP AUTH and IMAP LOGIN).
pub fn password_check(store: Store, branch: String) -> impl Fn(&str, &str) -> bool + Send + Sync {
    let verifier = Verifier::default();
    move |name, password| {
        let Ok(root) = store.head_tree(&branch) else {
            return false;
        };
        verifier
            .check(&store, &root, name, password)
            .unwrap_or(false)
    }
}

/// Checks Basic credentials against the accounts in a tree, remembering good ones.
pub struct Verifier {
    key: [u8; 32],
    known: Mutex<HashMap<String, (Hash, [u8; 32])>>,
}

impl Default for Verifier {
    fn default() -> Verifier {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        Verifier {
            key,
            known: Mutex::default(),
        }
    }
}

impl Verifier {
    /// Whether `password` is `name`'s password in the tree `root`.
    pub fn check(&self, store: &Store, root: &Hash, name: &str, password: &str) -> Result<bool> {
        if check_name(name).is_err() {
            return Ok(false);
        }
        let Some((_, record)) = store.find(root, &user_path(name))? else {
            return Ok(false);
        };
        let tag = *blake3::keyed_hash(&self.key, password.as_bytes()).as_bytes();
        if self.known.lock().unwrap().get(name) == Some(&(record, tag)) {
            return Ok(true);
        }
        let phc = String::from_utf8_lossy(&store.blob(&record)?)
            .trim()
            .to_string();
        let good = PasswordHash::new(&phc)
            .map(|h| {
                let _one_at_a_time = ARGON2_RUN.lock().unwrap_or_else(|e| e.into_inner());
                Argon2::default()
                    .verify_password(password.as_bytes(), &h)
                    .is_ok()
            })
            .unwrap_or(false);
        if good {
            self.known
                .lock()
                .unwrap()
                .insert(name.into(), (record, tag));
        }
        Ok(good)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_and_change() {
        let store = Store::memory();
        set_password(&store, "main", "ada", "s3cret", true, "test").unwrap();
        assert!(matches!(
            set_password(&store, "main", "ada", "x", true, "test"),
            Err(Error::UserExists(_))
        ));
        let v = Verifier::default();
        let root = store.head_tree("main").unwrap();
        assert!(v.check(&store, &root, "ada", "s3cret").unwrap());
        assert!(v.check(&store, &root, "ada", "s3cret").unwrap());
        assert!(!v.check(&store, &root, "ada", "wrong").unwrap());
        assert!(!v.check(&store, &root, "bob", "s3cret").unwrap());
        set_password(&store, "main", "ada", "new", false, "test").unwrap();
        let root = store.head_tree("main").unwrap();
        assert!(!v.check(&store, &root, "ada", "s3cret").unwrap());
        assert!(v.check(&store, &root, "ada", "new").unwrap());
        assert_eq!(list(&store, "main").unwrap(), vec!["ada".to_string()]);
        let stored = store.get(&root, &user_path("ada")).unwrap().unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("new"));
    }

    #[test]
    fn new_hashes_use_seven_mib_and_old_ones_still_verify() {
        let phc = hash_password("s3cret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{phc}");
        let store = Store::memory();
        let salt = SaltString::generate(&mut OsRng);
        let old = Argon2::default()
            .hash_password(b"s3cret", &salt)
            .unwrap()
            .to_string();
        assert!(old.contains("m=19456,t=2,p=1"), "{old}");
        let mut tx = store.transaction("main").unwrap();
        tx.put(&user_path("ada"), format!("{old}\n").as_bytes())
            .unwrap();
        tx.commit("test", "an account hashed with argon2's defaults")
            .unwrap();
        let root = store.head_tree("main").unwrap();
        let v = Verifier::default();
        assert!(v.check(&store, &root, "ada", "s3cret").unwrap());
        assert!(!v.check(&store, &root, "ada", "s3cre").unwrap());
    }
}
