//! The error numbers the kernel returns (hermit uses Linux's values).

/// No such file or directory.
pub const ENOENT: i32 = 2;
/// No such process (thread).
pub const ESRCH: i32 = 3;
/// Input/output error.
pub const EIO: i32 = 5;
/// Bad file descriptor.
pub const EBADF: i32 = 9;
/// Try again: the operation would block.
pub const EAGAIN: i32 = 11;
/// Invalid argument.
pub const EINVAL: i32 = 22;
/// Illegal seek.
pub const ESPIPE: i32 = 29;
/// Read-only file system.
pub const EROFS: i32 = 30;
/// Broken pipe.
pub const EPIPE: i32 = 32;
/// Message too long.
pub const EMSGSIZE: i32 = 90;
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
/// Already connected.
pub const EISCONN: i32 = 106;
/// Not connected.
pub const ENOTCONN: i32 = 107;
/// Timed out.
pub const ETIMEDOUT: i32 = 110;
/// The peer refused the connection.
pub const ECONNREFUSED: i32 = 111;
/// A non-blocking connection attempt has started.
pub const EINPROGRESS: i32 = 115;
