//! The catalog: which zone answers a name.
//!
//! As in hickory-server's `Catalog`, a parsed request is routed to the zone whose origin
//! is the longest suffix of the query name; a name in no zone is REFUSED (this server is
//! authoritative only, never a resolver).

use std::sync::Arc;

use hickory_proto::rr::LowerName;

use crate::zone::Zone;

/// The zones one server answers for.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    zones: Vec<Arc<Zone>>,
}

impl Catalog {
    /// A catalog of these zones.
    pub fn new(zones: Vec<Arc<Zone>>) -> Catalog {
        Catalog { zones }
    }

    /// The zone that holds `name`, if any: the one with the longest matching origin.
    pub fn find(&self, name: &LowerName) -> Option<&Arc<Zone>> {
        self.zones
            .iter()
            .filter(|z| z.lower_origin().zone_of(name))
            .max_by_key(|z| z.lower_origin().num_labels())
    }

    /// The zones.
    pub fn zones(&self) -> &[Arc<Zone>] {
        &self.zones
    }
}
