//! Review finding R-F1, the variant that does not abort: how many bytes a probe of a hostile file allocates,
//! measured by a counting global allocator in this test binary (its only test, so nothing else allocates
//! meanwhile). The peak during the probe must stay within the probe budgets, and every byte must be back after.
//! Run with `--nocapture` to see the figures.

use hearth::library::kind::Media;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = LIVE.fetch_add(n, Ordering::SeqCst) + n;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call goes to the system allocator unchanged; only the byte counts are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            grew(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            LIVE.fetch_sub(l.size(), Ordering::SeqCst);
            grew(new);
        }
        q
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// The peak bytes allocated above the start while `f` runs, and the bytes still allocated after it.
fn measure(f: impl FnOnce()) -> (usize, isize) {
    let before = LIVE.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    f();
    let peak = PEAK.load(Ordering::SeqCst) - before;
    (peak, LIVE.load(Ordering::SeqCst) as isize - before as isize)
}

fn large(kind: &[u8; 4], size: u64) -> Vec<u8> {
    [&1u32.to_be_bytes()[..], kind, &size.to_be_bytes()].concat()
}

/// A sparse MP4 of 1.2 GiB: ftyp, then moov/trak/mdia/minf/stbl filling it, then `stts` with 2^27 entries of
/// 8 bytes — which fit the box, so a reader that trusts box sizes reserves and fills 1 GiB for it.
fn greedy_mp4(path: &std::path::Path) -> u64 {
    let len: u64 = 1_200 << 20;
    let mut head = [&24u32.to_be_bytes()[..], b"ftypisom\0\0\0\0isomavc1"].concat();
    let mut left = len - head.len() as u64;
    for k in [b"moov", b"trak", b"mdia", b"minf", b"stbl"] {
        head.extend(large(k, left));
        left -= 16;
    }
    head.extend(large(b"stts", left));
    head.extend_from_slice(&[0, 0, 0, 0]);
    head.extend_from_slice(&(1u32 << 27).to_be_bytes());
    let f = std::fs::File::create(path).unwrap();
    std::io::Write::write_all(&mut &f, &head).unwrap();
    f.set_len(len).unwrap();
    len
}

#[test]
fn r_f1_memory_comes_back_after_a_hostile_probe() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("greedy.mp4");
    let len = greedy_mp4(&path);
    // Warm up whatever the probe path initialises once (thread-locals, lazy statics).
    std::fs::write(t.path().join("empty.mp4"), b"").unwrap();
    let _ = hearth::library::probe::probe(std::fs::File::open(t.path().join("empty.mp4")).unwrap(), 0, "mp4", Media::Video);
    let (peak, left) = measure(|| {
        let f = std::fs::File::open(&path).unwrap();
        let p = hearth::library::probe::probe(f, len, "mp4", Media::Video);
        assert_eq!(p.duration_ms, None, "nothing to show from this file: {p:?}");
    });
    println!("hostile MP4 probe: peak {peak} bytes allocated, {left} bytes left allocated after it");
    assert!(peak < 32 << 20, "a probe allocates within its budget (16 MiB moov), not {} MiB", peak >> 20);
    assert!(left.unsigned_abs() < 64 << 10, "memory comes back after the probe ({left} bytes left)");
}
