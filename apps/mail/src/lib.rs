//! kith-mail (being written).
