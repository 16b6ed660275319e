//! The network stack (smoltcp over virtio-net).

/// Brings up the network from the kernel command line.
pub fn init(_cmdline: &str) {}

/// Moves packets between the device and the sockets.
pub fn poll() {}
