//! Device drivers. Devices are found on the machine's virtio-mmio transports
//! and driven by polling (no interrupts yet).

pub mod block;
pub mod virtio;
