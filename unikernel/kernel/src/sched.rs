//! Threads and the cooperative scheduler.
//!
//! One CPU runs one thread at a time; a thread gives the CPU up only by
//! blocking ([`block`]), yielding ([`yield_now`]) or exiting. Each thread has
//! its own heap-allocated stack and TLS block (variant II on x86_64, where the
//! thread pointer points at the end of the block; variant I on aarch64, where
//! it points at its start). When
//! no thread is ready, the scheduler polls the network and its timers until
//! one is.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;
use core::alloc::Layout;

use crate::arch::{self, switch};
use crate::sync::Global;
use crate::{mm, net, time};

/// A thread's id, as std sees it.
pub type Tid = u32;

/// Why a blocked thread runs again.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Wake {
    /// Another thread (or the network) woke it.
    Signalled,
    /// Its deadline passed.
    TimedOut,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Running,
    Blocked { deadline: Option<u64> },
    Finished,
}

/// An owned heap block, freed on drop.
struct Block {
    ptr: *mut u8,
    layout: Layout,
}

impl Block {
    fn new(size: usize, align: usize) -> Option<Self> {
        let layout = Layout::from_size_align(size, align).ok()?;
        let ptr = mm::alloc(layout);
        // Not `then_some`: it would build (and drop, freeing null) a Block.
        if ptr.is_null() {
            None
        } else {
            Some(Self { ptr, layout })
        }
    }

    fn end(&self) -> usize {
        self.ptr as usize + self.layout.size()
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from `mm::alloc` with `layout`.
        unsafe { mm::free(self.ptr, self.layout) }
    }
}

/// The thread's entry function and its argument, as std passes them.
type Entry = (extern "C" fn(usize), usize);

struct Thread {
    rsp: usize,
    thread_pointer: usize,
    stack: Option<Block>,
    tls: Option<Block>,
    entry: Option<Entry>,
    state: State,
    wake: Wake,
    errno: i32,
    joiner: Option<Tid>,
}

struct Scheduler {
    threads: BTreeMap<Tid, Box<Thread>>,
    ready: VecDeque<Tid>,
    current: Tid,
    next_tid: Tid,
    dead: Vec<Tid>,
}

static SCHED: Global<Scheduler> = Global::new(Scheduler {
    threads: BTreeMap::new(),
    ready: VecDeque::new(),
    current: 0,
    next_tid: 1,
    dead: Vec::new(),
});

unsafe extern "C" {
    static __tls_start: u8;
    static __tdata_size: u8;
    static __tls_memsz: u8;
    static __tls_align: u8;
}

/// Smallest stack a thread gets, whatever it asks for.
const MIN_STACK: usize = 64 * 1024;

/// Allocates a TLS block initialised from the image's TLS template and
/// returns it with its thread pointer.
fn new_tls() -> Option<(Block, usize)> {
    // The linker script defines these symbols; only their addresses are
    // used (as the template's location, sizes and alignment).
    let template = &raw const __tls_start;
    let tdata = &raw const __tdata_size as usize;
    let memsz = &raw const __tls_memsz as usize;
    let align = (&raw const __tls_align as usize).max(1);
    let (size, data_offset, tp_offset) = if arch::TLS_VARIANT_I {
        // The thread pointer is the block's start, a 16-byte control block,
        // and the data follows at the next multiple of the alignment.
        let data = 16usize.next_multiple_of(align);
        (data + memsz, data, 0)
    } else {
        // The data ends where the thread pointer points, at a word that
        // points to itself.
        let data = memsz.next_multiple_of(align);
        (data + 16, 0, data)
    };
    let block = Block::new(size, align.max(16))?;
    // SAFETY: the block holds `memsz` bytes of TLS data at `data_offset`
    // (the template holds `tdata` initialised bytes) and, for variant II,
    // the self pointer at `tp_offset`.
    unsafe {
        let data = block.ptr.add(data_offset);
        core::ptr::write_bytes(block.ptr, 0, size);
        core::ptr::copy_nonoverlapping(template, data, tdata);
        let tp = block.ptr.add(tp_offset);
        if !arch::TLS_VARIANT_I {
            tp.cast::<usize>().write(tp as usize);
        }
        Some((block, tp as usize))
    }
}

impl Scheduler {
    fn thread(&mut self, tid: Tid) -> &mut Thread {
        self.threads.get_mut(&tid).expect("no such thread")
    }

    fn make_ready(&mut self, tid: Tid, wake: Wake) {
        if let Some(t) = self.threads.get_mut(&tid)
            && matches!(t.state, State::Blocked { .. })
        {
            t.state = State::Ready;
            t.wake = wake;
            self.ready.push_back(tid);
        }
    }

    fn expire_timers(&mut self, now: u64) {
        let expired: Vec<Tid> = self
            .threads
            .iter()
            .filter(|(_, t)| matches!(t.state, State::Blocked { deadline: Some(d) } if d <= now))
            .map(|(&tid, _)| tid)
            .collect();
        for tid in expired {
            self.make_ready(tid, Wake::TimedOut);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        self.threads
            .values()
            .filter_map(|t| match t.state {
                State::Blocked { deadline } => deadline,
                _ => None,
            })
            .min()
    }

    fn reap(&mut self) {
        let current = self.current;
        self.dead.retain(|&tid| {
            if tid == current {
                return true;
            }
            if let Some(t) = self.threads.get_mut(&tid) {
                t.stack = None;
                t.tls = None;
            }
            false
        });
    }
}

/// Registers the boot context as thread 0, which never runs again once it
/// blocks, and gives it a TLS block (so std's panic and out-of-memory
/// reports work during boot). False if there is no memory for it.
pub fn init() -> bool {
    let Some((tls, thread_pointer)) = new_tls() else {
        return false;
    };
    arch::set_thread_pointer(thread_pointer);
    SCHED.with(|s| {
        s.threads.insert(
            0,
            Box::new(Thread {
                rsp: 0,
                thread_pointer,
                stack: None,
                tls: Some(tls),
                entry: None,
                state: State::Running,
                wake: Wake::Signalled,
                errno: 0,
                joiner: None,
            }),
        );
    });
    true
}

/// Creates a ready thread running `entry(arg)` on a stack of at least
/// `stack_size` bytes; `None` when memory runs out.
pub fn spawn(entry: extern "C" fn(usize), arg: usize, stack_size: usize) -> Option<Tid> {
    let stack = Block::new(stack_size.max(MIN_STACK).next_multiple_of(16), 16)?;
    let (tls, thread_pointer) = new_tls()?;
    // SAFETY: the stack block is writable and its end is 16-byte aligned.
    let rsp = unsafe { switch::initial_stack(stack.end()) };
    let thread = Box::new(Thread {
        rsp,
        thread_pointer,
        stack: Some(stack),
        tls: Some(tls),
        entry: Some((entry, arg)),
        state: State::Ready,
        wake: Wake::Signalled,
        errno: 0,
        joiner: None,
    });
    Some(SCHED.with(|s| {
        let tid = s.next_tid;
        s.next_tid += 1;
        s.threads.insert(tid, thread);
        s.ready.push_back(tid);
        tid
    }))
}

#[unsafe(no_mangle)]
extern "C" fn kith_thread_start() -> ! {
    let (entry, arg) = SCHED.with(|s| {
        let current = s.current;
        s.thread(current)
            .entry
            .take()
            .expect("thread started twice")
    });
    entry(arg);
    exit_current()
}

/// Ends the current thread, waking a thread that waits to join it.
pub fn exit_current() -> ! {
    SCHED.with(|s| {
        let current = s.current;
        let t = s.thread(current);
        t.state = State::Finished;
        let joiner = t.joiner.take();
        s.dead.push(current);
        if let Some(joiner) = joiner {
            s.make_ready(joiner, Wake::Signalled);
        }
    });
    reschedule();
    unreachable!("a finished thread was resumed")
}

/// Waits for thread `tid` to finish; false if there is no such thread.
pub fn join(tid: Tid) -> bool {
    loop {
        let finished = SCHED.with(|s| {
            let current = s.current;
            let t = s.threads.get_mut(&tid)?;
            if t.state == State::Finished {
                s.threads.remove(&tid);
                s.dead.retain(|&d| d != tid);
                return Some(true);
            }
            t.joiner = Some(current);
            Some(false)
        });
        match finished {
            None => return false,
            Some(true) => return true,
            Some(false) => {
                block(None);
            }
        }
    }
}

/// The running thread's id.
pub fn current() -> Tid {
    SCHED.with(|s| s.current)
}

/// Blocks the running thread until [`wake`] or until the monotonic clock
/// reaches `deadline` (nanoseconds since boot).
pub fn block(deadline: Option<u64>) -> Wake {
    SCHED.with(|s| {
        let current = s.current;
        s.thread(current).state = State::Blocked { deadline };
    });
    reschedule();
    SCHED.with(|s| {
        let current = s.current;
        s.thread(current).wake
    })
}

/// Makes a blocked thread ready again.
pub fn wake(tid: Tid) {
    SCHED.with(|s| s.make_ready(tid, Wake::Signalled));
}

/// Lets every other ready thread run first.
pub fn yield_now() {
    SCHED.with(|s| {
        let current = s.current;
        s.thread(current).state = State::Ready;
        s.ready.push_back(current);
    });
    reschedule();
}

/// Blocks the running thread for `ns` nanoseconds.
pub fn sleep_ns(ns: u64) {
    let deadline = time::monotonic_ns().saturating_add(ns);
    while block(Some(deadline)) != Wake::TimedOut {}
}

/// Sets the running thread's last error number.
pub fn set_errno(errno: i32) {
    SCHED.with(|s| {
        let current = s.current;
        s.thread(current).errno = errno;
    });
}

/// The running thread's last error number.
pub fn errno() -> i32 {
    SCHED.with(|s| {
        let current = s.current;
        s.thread(current).errno
    })
}

/// How long an idle CPU halts at most before polling the network again,
/// when the NIC's interrupts do not wake it (no route for them).
const POLL_TICK_NS: u64 = 1_000_000;
/// How long it halts at most when they do (a safety net).
const IDLE_TICK_NS: u64 = 1_000_000_000;

/// Runs the next ready thread. While none is, polls the network and timers,
/// halting the CPU in between until the next deadline or idle tick.
fn reschedule() {
    loop {
        net::poll();
        let now = time::monotonic_ns();
        let (next, deadline) = SCHED.with(|s| {
            s.expire_timers(now);
            (s.ready.pop_front(), s.next_deadline())
        });
        match next {
            Some(tid) => return switch_to(tid),
            None => {
                let tick = if net::wakes_cpu() {
                    IDLE_TICK_NS
                } else {
                    POLL_TICK_NS
                };
                let wake = deadline
                    .into_iter()
                    .chain(net::poll_at())
                    .fold(now + tick, u64::min);
                arch::halt_until(wake);
            }
        }
    }
}

fn switch_to(next: Tid) {
    let switch = SCHED.with(|s| {
        let prev = s.current;
        s.current = next;
        let n = s.thread(next);
        n.state = State::Running;
        let (resume, tp) = (n.rsp, n.thread_pointer);
        (prev != next).then(|| (&raw mut s.thread(prev).rsp, resume, tp))
    });
    if let Some((save, resume, tp)) = switch {
        arch::set_thread_pointer(tp);
        // SAFETY: `save` points into a boxed thread that outlives the switch,
        // and `resume` is a stack pointer saved by an earlier switch or made
        // by `initial_stack`.
        unsafe { switch::kith_switch_stacks(save, resume) };
        SCHED.with(Scheduler::reap);
    }
}
