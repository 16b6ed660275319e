//! Device drivers. Devices are found on the machine's virtio-mmio transports
//! and driven by polling; the NIC's interrupt also wakes an idle CPU, where
//! the machine lets the kernel route it (no handler does any work).

pub mod block;
pub mod virtio;
