//! The error numbers the kernel returns (hermit uses Linux's values).

/// No such file or directory.
pub const ENOENT: i32 = 2;
/// No such process (thread).
pub const ESRCH: i32 = 3;
/// Bad file descriptor.
pub const EBADF: i32 = 9;
/// Try again: the operation would block.
pub const EAGAIN: i32 = 11;
/// Out of memory.
pub const ENOMEM: i32 = 12;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Broken pipe.
pub const EPIPE: i32 = 32;
/// Function not implemented.
pub const ENOSYS: i32 = 38;
/// Not a socket.
pub const ENOTSOCK: i32 = 88;
/// Operation not supported.
pub const EOPNOTSUPP: i32 = 95;
/// Address family not supported.
pub const EAFNOSUPPORT: i32 = 97;
/// Address already in use.
pub const EADDRINUSE: i32 = 98;
/// Network is down (no network device).
pub const ENETDOWN: i32 = 100;
/// Connection reset by peer.
pub const ECONNRESET: i32 = 104;
/// No buffer space available.
pub const ENOBUFS: i32 = 105;
/// Already connected.
pub const EISCONN: i32 = 106;
/// Not connected.
pub const ENOTCONN: i32 = 107;
/// Timed out.
pub const ETIMEDOUT: i32 = 110;
/// Connection refused.
pub const ECONNREFUSED: i32 = 111;
/// Operation already in progress.
pub const EALREADY: i32 = 114;
/// Operation now in progress.
pub const EINPROGRESS: i32 = 115;
