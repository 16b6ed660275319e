//! kith-identity's integration tests: one binary, a module per subject, real DNS tools
//! (`kdig`, `knsupdate`, `named-checkzone`) against a server on 127.0.0.1.

mod common;
mod query;
mod tls;
mod transfer;
mod updates;
