//! TSIG (RFC 8945) for requests: which key signed, whether the MAC and time hold, and
//! signing the response.

use std::collections::HashMap;

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{TsigAlgorithm, TsigError};
use hickory_proto::rr::{Name, TSigResponseContext, TSigner};

use crate::enroll::TsigKey;
use crate::error::{Error, Result};

/// The clock skew a signature may have, in seconds (RFC 8945 recommends 300).
pub const FUDGE: u16 = 300;

/// The TSIG keys a server accepts, by key name (lower case).
#[derive(Clone, Default)]
pub struct KeyRing {
    keys: HashMap<Name, (String, TSigner)>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys.keys()).finish()
    }
}

impl KeyRing {
    /// A key ring of enrolled devices' keys.
    pub fn new(keys: &[TsigKey]) -> Result<KeyRing> {
        let mut ring = KeyRing::default();
        for key in keys {
            let name = Name::from_ascii(&key.name)
                .map_err(|e| Error::Dns(format!("TSIG key name {}: {e}", key.name)))?;
            let algorithm = TsigAlgorithm::from_name(
                Name::from_ascii(&key.algorithm).map_err(|e| Error::Dns(e.to_string()))?,
            );
            let signer = TSigner::new(key.secret_bytes()?, algorithm, name.clone(), FUDGE)
                .map_err(|e| Error::Dns(format!("TSIG key {}: {e}", key.name)))?;
            ring.keys
                .insert(name.to_lowercase(), (key.device.clone(), signer));
        }
        Ok(ring)
    }

    fn get(&self, name: &Name) -> Option<&(String, TSigner)> {
        self.keys.get(&name.to_lowercase())
    }
}

/// The outcome of checking a request's TSIG.
pub enum Checked {
    /// The request carries no TSIG.
    Unsigned,
    /// Signed by a known key, MAC and time valid.
    Valid {
        /// The device whose key signed.
        device: String,
        /// Signs the response.
        response: TSigResponseContext,
    },
    /// Signed, but not acceptably: answer NOTAUTH with this TSIG.
    Failed {
        /// Why, for the log.
        reason: &'static str,
        /// Makes the (unsigned, or for BADTIME signed) response TSIG.
        response: TSigResponseContext,
    },
}

/// Checks the TSIG of `request` (whose wire form is `bytes`) at Unix time `now`.
pub fn check(ring: &KeyRing, request: &Message, bytes: &[u8], now: u64) -> Checked {
    let Some(sig) = request.signature() else {
        return Checked::Unsigned;
    };
    let id = request.metadata.id;
    let Some((device, signer)) = ring.get(&sig.name) else {
        return Checked::Failed {
            reason: "unknown key",
            response: TSigResponseContext::unknown_key(id, now, sig.name.clone()),
        };
    };
    let Ok((mac, _, range)) = signer.verify_message_byte(bytes, None, true) else {
        return Checked::Failed {
            reason: "bad MAC",
            response: TSigResponseContext::bad_signature(id, now, signer.clone()),
        };
    };
    if now < range.start || now > range.end {
        return Checked::Failed {
            reason: "time outside the fudge",
            response: TSigResponseContext::new(
                id,
                now,
                signer.clone(),
                mac,
                Some(TsigError::BadTime),
            ),
        };
    }
    Checked::Valid {
        device: device.clone(),
        response: TSigResponseContext::new(id, now, signer.clone(), mac, None),
    }
}

/// Encodes `resp` with a TSIG record from `context` appended.
pub fn sign(mut resp: Message, context: TSigResponseContext) -> Result<Vec<u8>> {
    let unsigned = resp.to_vec()?;
    resp.set_signature(context.sign(&unsigned)?);
    Ok(resp.to_vec()?)
}
