//! Device drivers. Devices are found on the machine's virtio-mmio transports
//! and driven by polling; on aarch64 the NIC's interrupt also wakes an idle
//! CPU (no handler runs).

pub mod block;
pub mod virtio;
