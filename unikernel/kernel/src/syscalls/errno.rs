//! The error numbers the kernel returns (hermit uses Linux's values).

/// No such process (thread).
pub const ESRCH: i32 = 3;
/// Bad file descriptor.
pub const EBADF: i32 = 9;
/// Try again: the operation would block.
pub const EAGAIN: i32 = 11;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Broken pipe.
pub const EPIPE: i32 = 32;
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
/// Not connected.
pub const ENOTCONN: i32 = 107;
/// Timed out.
pub const ETIMEDOUT: i32 = 110;
