//! A global allocator that counts what shard threads allocate (threads
//! named `shard-*`), total and by shape (kind, size, alignment), and the
//! heap they hold (bytes allocated less bytes freed there, as the callers'
//! layouts give them: mimalloc's rounding and its free pages are not in
//! it), and passes every call on to mimalloc.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use mimalloc::MiMalloc;

pub struct Counting;

/// Allocation totals on shard threads since the process started.
#[derive(Clone, Copy)]
pub struct Totals {
    pub count: u64,
    pub bytes: u64,
}

impl Totals {
    pub fn since(&self, before: &Totals) -> Totals {
        Totals {
            count: self.count - before.count,
            bytes: self.bytes - before.bytes,
        }
    }
}

/// How often one shape of allocation happened since the last clear.
pub struct Shape {
    pub kind: &'static str,
    pub size: usize,
    pub align: usize,
    pub count: u64,
}

impl Shape {
    /// An array of two or more `iovec`s (16 bytes, align 8): what
    /// tokio-uring's `writev` allocates per call. A guess by shape;
    /// `--shapes` shows what else is that shape.
    pub fn is_iovec_array(&self) -> bool {
        self.kind == "alloc" && self.align == 8 && self.size >= 32 && self.size % 16 == 0
    }
}

static COUNT: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated less bytes freed on shard threads. Signed: a buffer
/// made on another thread (the players', the publisher's) and freed on a
/// shard counts down.
static LIVE: AtomicI64 = AtomicI64::new(0);

/// Open-addressed table of shapes (key 0: free slot), written only by
/// shard threads. Shapes past its capacity count in the totals only.
const SHAPES_MAX: usize = 1024;
static SHAPE_KEYS: [AtomicU64; SHAPES_MAX] = [const { AtomicU64::new(0) }; SHAPES_MAX];
static SHAPE_COUNTS: [AtomicU64; SHAPES_MAX] = [const { AtomicU64::new(0) }; SHAPES_MAX];

const KIND_ALLOC: u64 = 1;
const KIND_REALLOC: u64 = 2;

/// Whether this thread's allocations count: not yet known, yes, no, or
/// being found out (an allocation made while finding out, if any, is
/// not counted and does not recurse).
const UNKNOWN: u8 = 0;
const COUNTED: u8 = 1;
const IGNORED: u8 = 2;
const CHECKING: u8 = 3;

thread_local! {
    // A const-initialised Cell: no allocation, no destructor.
    static ROLE: Cell<u8> = const { Cell::new(UNKNOWN) };
}

fn counted() -> bool {
    ROLE.try_with(|role| match role.get() {
        COUNTED => true,
        IGNORED | CHECKING => false,
        _ => {
            role.set(CHECKING);
            let shard = std::thread::current()
                .name()
                .is_some_and(|name| name.starts_with("shard-"));
            role.set(if shard { COUNTED } else { IGNORED });
            shard
        }
    })
    .unwrap_or(false)
}

/// Counts an allocation (or a reallocation to `layout`) of `grown` more
/// bytes held.
fn record(kind: u64, layout: Layout, grown: i64) {
    if !counted() {
        return;
    }
    LIVE.fetch_add(grown, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
    BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
    let key =
        ((layout.size() as u64) << 16) | ((layout.align().trailing_zeros() as u64) << 8) | kind;
    let mut slot = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize % SHAPES_MAX;
    for _ in 0..SHAPES_MAX {
        let found =
            match SHAPE_KEYS[slot].compare_exchange(0, key, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => key,
                Err(found) => found,
            };
        if found == key {
            SHAPE_COUNTS[slot].fetch_add(1, Ordering::Relaxed);
            return;
        }
        slot = (slot + 1) % SHAPES_MAX;
    }
}

// SAFETY: every call is passed on unchanged to mimalloc; counting
// touches only atomics and a const thread-local.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(KIND_ALLOC, layout, layout.size() as i64);
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(KIND_ALLOC, layout, layout.size() as i64);
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if counted() {
            LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if let Ok(new) = Layout::from_size_align(new_size, layout.align()) {
            record(KIND_REALLOC, new, new_size as i64 - layout.size() as i64);
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

pub fn totals() -> Totals {
    Totals {
        count: COUNT.load(Ordering::Relaxed),
        bytes: BYTES.load(Ordering::Relaxed),
    }
}

/// Bytes shard threads hold now (allocated less freed there).
pub fn live_bytes() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

/// Forgets the shapes counted so far (call while shards are idle).
pub fn clear_shapes() {
    for count in &SHAPE_COUNTS {
        count.store(0, Ordering::Relaxed);
    }
}

/// Shapes seen since the last clear, most frequent first.
pub fn shapes() -> Vec<Shape> {
    let mut shapes: Vec<Shape> = SHAPE_KEYS
        .iter()
        .zip(&SHAPE_COUNTS)
        .map(|(key, count)| (key.load(Ordering::Relaxed), count.load(Ordering::Relaxed)))
        .filter(|&(key, count)| key != 0 && count > 0)
        .map(|(key, count)| Shape {
            kind: if key & 0xFF == KIND_REALLOC {
                "realloc"
            } else {
                "alloc"
            },
            size: (key >> 16) as usize,
            align: 1 << ((key >> 8) & 0xFF),
            count,
        })
        .collect();
    shapes.sort_by_key(|s| std::cmp::Reverse(s.count));
    shapes
}
