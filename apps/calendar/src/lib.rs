//! kith-calendar (being written).
