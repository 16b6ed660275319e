//! Device drivers. Devices are found on the virtio-mmio transports of QEMU's
//! microvm machine and driven by polling (no interrupts yet).

pub mod virtio;
