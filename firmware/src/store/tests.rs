//! Proofs for the store: power cuts at every interesting byte of every write in seeded random update
//! sequences, bit flips, foreign content, damage, geometry, and the backends on real files.
//!
//! `HEARTH_SOAK=N` runs N sequences per semantics with *every* cut point (0..=bytes of the update, erases
//! included) instead of the sampled set; `HEARTH_SOAK=1` means 20 sequences (about ten minutes per semantics on
//! this machine, both semantics run in parallel).

use super::sim::{Semantics, SimFlash};
use super::*;
use std::collections::{BTreeMap, BTreeSet};

const SCHEMA: u16 = 2;

struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// (semantics, size, erase, write): small areas so a 16 KiB record forces a slot switch almost every time and
/// small ones append several times per slot.
const NOR_GEOMETRIES: [(u64, u32, u32); 2] = [(40 * 1024, 4096, 1), (36 * 1024, 2048, 1)];
const BLOCK_GEOMETRIES: [(u64, u32, u32); 2] = [(48 * 1024, 4096, 512), (48 * 1024, 4096, 4096)];

fn reopen(flash: &SimFlash, sem: Semantics) -> (Store<SimFlash>, Opened) {
    let g = flash.geometry();
    let f = SimFlash::with_image(sem, flash.image(), g.erase_size, g.write_size);
    Store::open(f).expect("a store cut by power loss must open")
}

fn payload(rng: &mut Rng) -> Vec<u8> {
    let len = match rng.below(10) {
        0..=4 => 1 + rng.below(600),
        5..=7 => 600 + rng.below(3500),
        _ => 4096 + rng.below((MAX_PAYLOAD - 4096) as u64 + 1),
    } as usize;
    rng.bytes(len)
}

/// Cut points for one update: every byte of short operations (headers), the first, second and last bytes of
/// long ones, the start and middle of the first and last three write units (block semantics), and two random
/// bytes. `all`: every
/// byte.
fn cut_points(flash: &SimFlash, total: u64, unit: u64, rng: &mut Rng, all: bool) -> BTreeSet<u64> {
    let mut cuts = BTreeSet::new();
    cuts.insert(total);
    if all {
        cuts.extend(0..total);
        return cuts;
    }
    for op in flash.ops() {
        let (s, l) = (op.start, op.len);
        if l <= 64 {
            cuts.extend(s..s + l);
            continue;
        }
        cuts.extend([s, s + 1, s + l / 2, s + l - 2, s + l - 1]);
        if unit > 1 && !op.erase {
            // Block semantics: a cut inside each sector tears it, a cut at its start leaves it old.
            let units = l.div_ceil(unit);
            for k in (0..units).filter(|k| *k < 3 || *k + 3 >= units) {
                cuts.extend([s + k * unit, s + k * unit + unit / 2].into_iter().filter(|c| *c < s + l));
            }
        }
        for _ in 0..2 {
            cuts.insert(s + rng.below(l));
        }
    }
    cuts
}

#[derive(Default, Debug)]
struct Tally {
    sequences: u64,
    updates: u64,
    cut_points: u64,
    opened_old: u64,
    opened_new: u64,
    first_record_damaged: u64,
    switches: u64,
}

type Committed = Option<(u64, Vec<u8>)>;

fn check(opened: &Opened, before: &Committed, after: &(u64, Vec<u8>), tally: &mut Tally, ctx: &str) -> Committed {
    match opened {
        Opened::Found(l) => {
            assert_eq!(l.schema, SCHEMA, "{ctx}");
            let got = (l.seq, l.payload.clone());
            if Some(&got) == before.as_ref() {
                tally.opened_old += 1;
            } else if got == *after {
                tally.opened_new += 1;
            } else {
                panic!(
                    "{ctx}: opened seq {} ({} bytes), expected the old seq {:?} or the new seq {}",
                    l.seq,
                    l.payload.len(),
                    before.as_ref().map(|b| b.0),
                    after.0
                );
            }
            Some(got)
        }
        Opened::Blank | Opened::Damaged => {
            // Only possible while no record was ever committed (see the store doc: a cut first record).
            assert!(before.is_none(), "{ctx}: lost the committed seq {:?}: {opened:?}", before.as_ref().map(|b| b.0));
            if *opened == Opened::Damaged {
                tally.first_record_damaged += 1;
            }
            tally.opened_old += 1;
            None
        }
    }
}

fn run_sequence(seed: u64, sem: Semantics, geometry: (u64, u32, u32), updates: usize, all: bool, tally: &mut Tally) {
    let mut rng = Rng::new(seed);
    let (size, erase, write) = geometry;
    let unit = write as u64;
    let mut flash = SimFlash::new(sem, size, erase, write);
    let (mut store, opened) = Store::open(flash.clone()).unwrap();
    assert_eq!(opened, Opened::Blank);
    let mut current: Committed = None;
    for u in 0..updates {
        let data = payload(&mut rng);
        let ctx = format!("{sem:?} {geometry:?} seed {seed} update {u} ({} bytes)", data.len());
        // Dry run on a fork to learn which operations this update performs.
        let probe = flash.fork();
        probe.record_ops();
        let mut dry = store.with_flash(probe.clone());
        dry.write(SCHEMA, &data).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        let after = (dry.stats().seq, data.clone());
        tally.switches += dry.stats().slot_switches - store.stats().slot_switches;
        let total = probe.activity();
        let cuts = cut_points(&probe, total, unit, &mut rng, all);
        tally.cut_points += cuts.len() as u64;
        for &n in &cuts {
            let f = flash.fork();
            f.cut_after(n, seed ^ (n << 20) ^ u as u64);
            let mut s = store.with_flash(f.clone());
            let r = s.write(SCHEMA, &data);
            assert!(r.is_ok() || f.is_off(), "{ctx} cut {n}: failed without a cut: {r:?}");
            let (_, opened) = reopen(&f, sem);
            check(&opened, &current, &after, tally, &format!("{ctx} cut at byte {n} of {total}"));
        }
        // The main line goes on from a cut one time in four, so later updates run over torn tails, half-erased
        // slots and interrupted switches.
        if rng.below(4) == 0 {
            let n = *cuts.iter().nth(rng.below(cuts.len() as u64) as usize).unwrap();
            flash.cut_after(n, seed ^ n);
            let _ = store.write(SCHEMA, &data);
            let (s, opened) = reopen(&flash, sem);
            current = check(&opened, &current, &after, tally, &format!("{ctx} main-line cut at {n}"));
            flash = s.flash.clone();
            store = s;
        } else {
            store.write(SCHEMA, &data).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            current = Some(after.clone());
            if rng.below(8) == 0 {
                let (s, opened) = reopen(&flash, sem);
                assert_eq!(opened, Opened::Found(Loaded { schema: SCHEMA, seq: after.0, payload: after.1 }), "{ctx}");
                flash = s.flash.clone();
                store = s;
            }
        }
        tally.updates += 1;
    }
    let (_, opened) = reopen(&flash, sem);
    match (&opened, &current) {
        (Opened::Found(l), Some(c)) => assert_eq!((l.seq, &l.payload), (c.0, &c.1)),
        (Opened::Blank | Opened::Damaged, None) => {}
        other => panic!("seed {seed}: end state {other:?}"),
    }
    tally.sequences += 1;
}

fn soak() -> Option<u64> {
    let v = std::env::var("HEARTH_SOAK").ok()?;
    match v.parse::<u64>() {
        Ok(1) | Err(_) => Some(20),
        Ok(n) => Some(n),
    }
}

fn power_loss(sem: Semantics, geometries: &[(u64, u32, u32)]) {
    let soak = soak();
    let sequences = soak.unwrap_or(200);
    let mut tally = Tally::default();
    let started = std::time::Instant::now();
    for seed in 0..sequences {
        let g = geometries[(seed % geometries.len() as u64) as usize];
        run_sequence(seed + 1, sem, g, 12, soak.is_some(), &mut tally);
    }
    println!(
        "power-loss proof ({sem:?}{}): {} sequences, {} updates ({} slot switches), {} cut points: \
         {} reopened to the old state, {} to the new one ({} cut first records opened Damaged), {:.1?}",
        if soak.is_some() { ", every byte" } else { ", sampled" },
        tally.sequences,
        tally.updates,
        tally.switches,
        tally.cut_points,
        tally.opened_old,
        tally.opened_new,
        tally.first_record_damaged,
        started.elapsed()
    );
    assert!(tally.opened_old > 0 && tally.opened_new > 0, "{tally:?}");
}

#[test]
fn power_loss_nor() {
    power_loss(Semantics::Nor, &NOR_GEOMETRIES);
}

#[test]
fn power_loss_block() {
    power_loss(Semantics::Block, &BLOCK_GEOMETRIES);
}

/// Writes `n` random updates; returns the flash and every committed payload by seq.
fn filled(sem: Semantics, geometry: (u64, u32, u32), n: usize, seed: u64) -> (SimFlash, BTreeMap<u64, Vec<u8>>) {
    let mut rng = Rng::new(seed);
    let flash = SimFlash::new(sem, geometry.0, geometry.1, geometry.2);
    let (mut store, _) = Store::open(flash.clone()).unwrap();
    let mut history = BTreeMap::new();
    for _ in 0..n {
        let len = 1 + rng.below(3000) as usize;
        let p = rng.bytes(len);
        store.write(SCHEMA, &p).unwrap();
        history.insert(store.stats().seq, p);
    }
    (flash, history)
}

/// Physical (offset, record bytes, seq) of every valid record.
fn records(flash: &SimFlash, unit: u64) -> Vec<(u64, u64, u64)> {
    let img = flash.image();
    let g = flash.geometry();
    let slot_len = g.size / g.erase_size as u64 / 2 * g.erase_size as u64;
    let mut out = Vec::new();
    for base in [0, slot_len] {
        let scan = record::scan_slot(&img[base as usize..(base + slot_len) as usize], unit);
        for e in scan.entries.iter().filter(|e| e.valid) {
            out.push((base + e.offset, (RECORD_HEADER_LEN as u64) + e.header.len as u64, e.header.seq));
        }
    }
    out
}

#[test]
fn bit_flips_are_rejected_and_the_previous_record_is_used() {
    let mut rng = Rng::new(77);
    let mut trials = 0;
    for (sem, g) in [(Semantics::Nor, NOR_GEOMETRIES[0]), (Semantics::Block, BLOCK_GEOMETRIES[0])] {
        let unit = (g.2 as u64).max(4);
        for seed in 0..20 {
            let (flash, history) = filled(sem, g, 25, seed);
            let recs = records(&flash, unit);
            let newest = *history.keys().last().unwrap();
            for _ in 0..20 {
                let (off, len, seq) = recs[rng.below(recs.len() as u64) as usize];
                let f = flash.fork();
                let mut flipped_header = false;
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(len);
                    flipped_header |= at < RECORD_HEADER_LEN as u64;
                    f.edit(|img| img[(off + at) as usize] ^= 1 << rng.below(8));
                }
                let (s, opened) = Store::open(f).unwrap();
                let Opened::Found(l) = opened else { panic!("seed {seed}: one damaged record lost the store") };
                assert_ne!(l.seq, seq, "the damaged record was used");
                assert_eq!(Some(&l.payload), history.get(&l.seq), "opened content is not what was written");
                assert!(s.stats().skipped_at_open >= 1);
                if seq == newest {
                    let previous = *history.range(..newest).last().unwrap().0;
                    assert_eq!(l.seq, previous, "flip in the newest record: the previous one is used");
                } else if !flipped_header {
                    assert_eq!(l.seq, newest, "a flip in an older payload must not hide the newest");
                }
                trials += 1;
            }
        }
    }
    println!("bit flips: {trials} damaged stores reopened");
}

#[test]
fn blank_flash_is_formatted_and_keeps_records() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    let (mut store, opened) = Store::open(flash.clone()).unwrap();
    assert_eq!(opened, Opened::Blank);
    let (_, again) = Store::open(flash.fork()).unwrap();
    assert_eq!(again, Opened::Blank, "a formatted, empty store opens as Blank");
    store.write(SCHEMA, b"hello").unwrap();
    store.write(SCHEMA, b"world").unwrap();
    let (s, opened) = Store::open(flash.fork()).unwrap();
    assert_eq!(opened, Opened::Found(Loaded { schema: SCHEMA, seq: 2, payload: b"world".to_vec() }));
    assert_eq!(s.stats().seq, 2);
}

#[test]
fn zeroed_area_is_blank() {
    let flash = SimFlash::with_image(Semantics::Block, vec![0; 48 * 1024], 4096, 4096);
    let (mut store, opened) = Store::open(flash.clone()).unwrap();
    assert_eq!(opened, Opened::Blank);
    store.write(SCHEMA, b"x").unwrap();
    assert!(matches!(Store::open(flash.fork()).unwrap().1, Opened::Found(_)));
}

#[test]
fn foreign_content_is_refused_untouched_until_format() {
    let mut rng = Rng::new(5);
    let samples: Vec<Vec<u8>> = vec![
        rng.bytes(64 * 1024),
        {
            // An ext4-like image: mostly zeros with a superblock, or a text file padded with 0xFF.
            let mut v = vec![0u8; 64 * 1024];
            v[1024 + 56] = 0x53;
            v[1024 + 57] = 0xEF;
            v
        },
        {
            let mut v = vec![0xFFu8; 64 * 1024];
            v[..40].copy_from_slice(b"bootcmd=run distro_bootcmd\0bootdelay=2\0\0");
            v
        },
    ];
    for image in samples {
        let flash = SimFlash::with_image(Semantics::Nor, image.clone(), 4096, 1);
        let err = Store::open(flash.clone()).expect_err("foreign content must be refused");
        assert!(matches!(err, StoreError::NotAStore), "{err}");
        assert!(err.to_string().contains("--format"), "the message says how to proceed: {err}");
        assert_eq!(flash.image(), image, "refusing must not change a byte");
        let mut store = Store::format(flash.clone()).unwrap();
        assert_eq!(Store::open(flash.fork()).unwrap().1, Opened::Blank);
        store.write(SCHEMA, b"mine now").unwrap();
        let (_, opened) = Store::open(flash.fork()).unwrap();
        assert!(matches!(opened, Opened::Found(l) if l.payload == b"mine now"));
    }
}

#[test]
fn interrupted_format_of_blank_flash_opens_blank() {
    for n in 0..SLOT_HEADER_LEN as u64 {
        let flash = SimFlash::new(Semantics::Nor, 40 * 1024, 4096, 1);
        flash.cut_after(n, n + 1);
        assert!(Store::open(flash.clone()).is_err());
        let (_, opened) = reopen(&flash, Semantics::Nor);
        assert_eq!(opened, Opened::Blank, "cut at byte {n} of the first slot header");
    }
}

#[test]
fn both_slots_corrupt_opens_damaged() {
    let (flash, history) = filled(Semantics::Nor, NOR_GEOMETRIES[0], 20, 9);
    let recs = records(&flash, 4);
    assert!(recs.iter().any(|r| r.0 < 20 * 1024) && recs.iter().any(|r| r.0 >= 20 * 1024), "records in both slots");
    assert!(history.len() == 20);
    // Flip one payload byte in every record of both slots: every header still says "Hearth".
    for (off, _, _) in &recs {
        flash.edit(|img| img[*off as usize + RECORD_HEADER_LEN] ^= 0x01);
    }
    let (mut store, opened) = Store::open(flash.clone()).unwrap();
    assert_eq!(opened, Opened::Damaged);
    assert_eq!(store.stats().skipped_at_open as usize, recs.len());
    // A damaged store takes new records (defaults written by serve) without a format.
    store.write(SCHEMA, b"defaults").unwrap();
    let (_, opened) = Store::open(flash.fork()).unwrap();
    assert!(matches!(opened, Opened::Found(l) if l.payload == b"defaults" && l.seq > 20));

    // Garbage over both slots' records but slot headers intact: still ours, Damaged, not NotAStore.
    let (flash, _) = filled(Semantics::Nor, NOR_GEOMETRIES[0], 20, 10);
    let mut rng = Rng::new(3);
    flash.edit(|img| {
        for base in [0usize, 20 * 1024] {
            for b in &mut img[base + 20..base + 20 * 1024] {
                *b = rng.next() as u8;
            }
        }
    });
    assert_eq!(Store::open(flash).unwrap().1, Opened::Damaged);
}

#[test]
fn a_torn_record_at_the_tail_does_not_break_later_appends() {
    for sem in [Semantics::Nor, Semantics::Block] {
        let (size, erase, write) = if sem == Semantics::Nor { NOR_GEOMETRIES[0] } else { BLOCK_GEOMETRIES[0] };
        let flash = SimFlash::new(sem, size, erase, write);
        let (mut s, _) = Store::open(flash.clone()).unwrap();
        s.write(SCHEMA, b"first").unwrap();
        let before = s.stats();
        // Cut in the middle of the next record's body: its bytes sit after "first", with no header.
        flash.cut_after(600, 42);
        assert!(s.write(SCHEMA, &vec![0x5A; 3000]).is_err());
        let (mut s, opened) = reopen(&flash, sem);
        assert!(matches!(opened, Opened::Found(ref l) if l.payload == b"first"), "{sem:?}: {opened:?}");
        // The next write must not land on the torn bytes (NOR could only AND into them): it moves slots.
        let flash = s.flash.clone();
        s.write(SCHEMA, b"second").unwrap();
        assert_eq!(s.stats().active_slot, 1 - before.active_slot, "{sem:?}: moved to the other slot");
        s.write(SCHEMA, b"third").unwrap();
        let (_, opened) = Store::open(flash.fork()).unwrap();
        assert!(matches!(opened, Opened::Found(l) if l.payload == b"third" && l.seq == 3), "{sem:?}");
    }
}

#[test]
fn geometry_is_checked() {
    let small = SimFlash::new(Semantics::Nor, 32 * 1024, 4096, 1);
    let err = Store::open(small).err().unwrap();
    assert!(matches!(err, StoreError::Geometry(ref m) if m.contains(&MAX_PAYLOAD.to_string())), "{err}");
    // A store made with 4 KiB blocks opened as if it had 8 KiB blocks on a flash that is larger: refused.
    let flash = SimFlash::new(Semantics::Nor, 80 * 1024, 4096, 1);
    let (mut s, _) = Store::open(flash.clone()).unwrap();
    s.write(SCHEMA, b"abc").unwrap();
    let other = SimFlash::with_image(Semantics::Nor, flash.image(), 16 * 1024, 1);
    let err = Store::open(other).err().unwrap();
    assert!(matches!(err, StoreError::Geometry(ref m) if m.contains("slot A")), "{err}");
}

#[test]
fn too_large_payload_is_refused_and_changes_nothing() {
    let flash = SimFlash::new(Semantics::Nor, 40 * 1024, 4096, 1);
    let (mut s, _) = Store::open(flash.clone()).unwrap();
    s.write(SCHEMA, b"keep").unwrap();
    let before = flash.image();
    let err = s.write(SCHEMA, &vec![1; MAX_PAYLOAD + 1]).unwrap_err();
    assert!(matches!(err, StoreError::TooLarge { len, max } if len == MAX_PAYLOAD + 1 && max == MAX_PAYLOAD));
    assert_eq!(flash.image(), before);
    s.write(SCHEMA, &vec![2; MAX_PAYLOAD]).unwrap();
    assert!(matches!(Store::open(flash.fork()).unwrap().1, Opened::Found(l) if l.payload.len() == MAX_PAYLOAD));
}

#[test]
fn failed_writes_keep_the_previous_record_and_recover() {
    for sem in [Semantics::Nor, Semantics::Block] {
        let (size, erase, write) = if sem == Semantics::Nor { NOR_GEOMETRIES[0] } else { BLOCK_GEOMETRIES[0] };
        let flash = SimFlash::new(sem, size, erase, write);
        let (mut s, _) = Store::open(flash.clone()).unwrap();
        s.write(SCHEMA, b"one").unwrap();
        flash.fail_writes(true);
        assert!(matches!(s.write(SCHEMA, b"two"), Err(StoreError::Io(_))));
        flash.fail_writes(false);
        assert!(matches!(Store::open(flash.fork()).unwrap().1, Opened::Found(l) if l.payload == b"one"));
        s.write(SCHEMA, b"three").unwrap();
        let (_, opened) = Store::open(flash.fork()).unwrap();
        assert!(matches!(opened, Opened::Found(l) if l.payload == b"three" && l.seq == 3), "{sem:?}");
    }
}

#[test]
fn bad_blocks_are_skipped() {
    let flash = SimFlash::new(Semantics::Nor, 48 * 1024, 4096, 1);
    // Block 1 of slot A is bad and holds junk that must never be read as ours or written.
    flash.edit(|img| img[4096..8192].fill(0x00));
    flash.mark_bad(4096);
    let (mut s, _) = Store::format(flash.clone()).map(|s| (s, ())).unwrap();
    let mut last = Vec::new();
    for i in 0..40u32 {
        last = vec![i as u8; 1000 + (i as usize * 397) % 9000];
        s.write(SCHEMA, &last).unwrap();
    }
    assert!(flash.image()[4096..8192].iter().all(|b| *b == 0), "the bad block was touched");
    let (_, opened) = Store::open(flash.fork()).unwrap();
    assert!(matches!(opened, Opened::Found(l) if l.payload == last));

    // Too many bad blocks for a slot to hold the largest record: refused with a reason, not a panic.
    let worn = SimFlash::new(Semantics::Nor, 48 * 1024, 4096, 1);
    for b in 6..12u64 {
        worn.mark_bad(b * 4096);
    }
    let err = Store::open(worn).err().unwrap();
    assert!(matches!(err, StoreError::Geometry(ref m) if m.contains("slot B") && m.contains("bad blocks")), "{err}");
}

#[test]
fn nor_file_behaves_like_nor_and_keeps_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.img");
    let mut f = NorFile::open_or_create(&path, 64 * 1024, 4096).unwrap();
    assert!(std::fs::read(&path).unwrap().iter().all(|b| *b == 0xFF));
    f.write(10, &[0xF0]).unwrap();
    f.write(10, &[0x0F]).unwrap();
    let mut b = [0u8; 1];
    f.read(10, &mut b).unwrap();
    assert_eq!(b[0], 0x00, "a NOR write can only clear bits");
    f.erase(0, 4096).unwrap();
    f.read(10, &mut b).unwrap();
    assert_eq!(b[0], 0xFF);
    assert!(f.erase(100, 4096).is_err(), "erase must be block-aligned");
    drop(f);
    let (mut s, opened) = Store::open(NorFile::open_or_create(&path, 64 * 1024, 4096).unwrap()).unwrap();
    assert_eq!(opened, Opened::Blank);
    s.write(SCHEMA, b"persisted").unwrap();
    drop(s);
    let (_, opened) = Store::open(NorFile::open_or_create(&path, 64 * 1024, 4096).unwrap()).unwrap();
    assert!(matches!(opened, Opened::Found(l) if l.payload == b"persisted"));
    std::fs::write(&path, vec![0xFF; 5000]).unwrap();
    let err = NorFile::open_or_create(&path, 64 * 1024, 4096).err().unwrap();
    assert!(err.to_string().contains("erase blocks"), "{err}");
}

#[test]
fn block_device_on_a_file_region() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("disk.img");
    // 8 KiB of something else, then the store's 96 KiB, then 4 KiB of something else.
    let mut disk = vec![0xABu8; 8192];
    disk.extend(vec![0u8; 96 * 1024]);
    disk.extend(vec![0xCDu8; 4096]);
    std::fs::write(&path, &disk).unwrap();
    let mut dev = BlockDevice::open(&path, 8192, 96 * 1024).unwrap();
    assert_eq!(dev.geometry().write_size, 4096);
    assert!(dev.write(100, &[0; 4096]).is_err(), "unaligned sector write refused");
    let (mut s, opened) = Store::open(dev).unwrap();
    assert_eq!(opened, Opened::Blank, "a zeroed partition is blank");
    for i in 0..30u8 {
        s.write(SCHEMA, &vec![i; 3000]).unwrap();
    }
    drop(s);
    let (_, opened) = Store::open(BlockDevice::open(&path, 8192, 96 * 1024).unwrap()).unwrap();
    assert!(matches!(opened, Opened::Found(l) if l.payload == vec![29u8; 3000] && l.seq == 30));
    let after = std::fs::read(&path).unwrap();
    assert_eq!(&after[..8192], &disk[..8192], "bytes before the store area untouched");
    assert_eq!(&after[8192 + 96 * 1024..], &disk[8192 + 96 * 1024..], "bytes after it untouched");
    assert!(BlockDevice::open(&path, 8192, 200 * 1024).is_err(), "an area past the end is refused");
}

/// Figures for the note: write latency on the NOR file backend, wear, record sizes of a realistic update.
/// `cargo test -p hearth store::tests::figures -- --nocapture`
#[test]
fn figures() {
    // Latency: 200 updates of 2 KiB on a NorFile in a temporary folder (each update: 2 fdatasync, read-back).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flash.img");
    let (mut s, _) = Store::open(NorFile::open_or_create(&path, 128 * 1024, 4096).unwrap()).unwrap();
    let mut rng = Rng::new(1);
    let n = 200;
    let mut times = Vec::with_capacity(n);
    let mut last = Vec::new();
    for _ in 0..n {
        last = rng.bytes(2048);
        let t = std::time::Instant::now();
        s.write(SCHEMA, &last).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let mean = times.iter().sum::<std::time::Duration>() / n as u32;
    println!(
        "NorFile write latency ({} updates of 2 KiB, 128 KiB flash, 4 KiB blocks, fdatasync, in {}): \
         mean {:?}, median {:?}, p99 {:?}",
        n,
        dir.path().display(),
        mean,
        times[n / 2],
        times[n * 99 / 100]
    );
    let (_, opened) = Store::open(NorFile::open_or_create(&path, 128 * 1024, 4096).unwrap()).unwrap();
    assert!(matches!(opened, Opened::Found(l) if l.payload == last));

    // Wear: erases per 1,000 updates, default geometry, record sizes 1-4 KiB.
    for (lo, hi) in [(1024u64, 4096u64), (1024, 1024), (4096, 4096)] {
        let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
        let (mut s, _) = Store::open(flash.clone()).unwrap();
        for _ in 0..1000 {
            let len = lo + rng.below(hi - lo + 1);
            s.write(SCHEMA, &rng.bytes(len as usize)).unwrap();
        }
        let st = s.stats();
        println!(
            "wear: 1000 updates of {lo}-{hi} bytes on 128 KiB / 4 KiB NOR: {} block erases ({} slot switches), \
             {:.1} erases per block per 1000 updates",
            st.erases,
            st.slot_switches,
            st.erases as f64 / 32.0
        );
        assert_eq!(st.records_written, 1000);
    }
}

/// Seeds for the fuzz target (firmware/fuzz): real store images, so the fuzzer mutates valid slot and record
/// headers instead of having to forge CRCs. Every run reads each seed back as `fuzz_targets/store_open.rs` does
/// (first byte the semantics, the rest the image padded with erased bytes): the store opens it, finds the last
/// record written, and a write then a reopen gives that write back. With `HEARTH_FUZZ_SEEDS=<dir>` the seeds are
/// also written there (scripts/fuzz-store).
#[test]
fn fuzz_seeds() {
    let dir = std::env::var_os("HEARTH_FUZZ_SEEDS").map(std::path::PathBuf::from);
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut n = 0;
    for (sem, selector, write) in [(Semantics::Nor, 0u8, 1u32), (Semantics::Block, 1, 512)] {
        for updates in [1usize, 3, 12] {
            let (flash, history) = filled(sem, (40 * 1024, 4096, write), updates, updates as u64);
            let img = flash.image();
            let used = img.iter().rposition(|b| *b != 0xFF).map_or(0, |p| p + 1);
            // Short seeds (slot A only, trailing erased bytes dropped) unless slot B is in use.
            let keep = if used > 20 * 1024 { img.len() } else { used };
            let mut seed = vec![selector];
            seed.extend_from_slice(&img[..keep]);
            let name = format!("store-{sem:?}-{updates}");
            let mut image = seed[1..].to_vec();
            image.resize(40 * 1024, 0xFF);
            let again = SimFlash::with_image(sem, image, 4096, write);
            let (mut store, opened) = Store::open(again.clone()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
            let last = history.values().next_back().unwrap();
            assert!(matches!(&opened, Opened::Found(l) if &l.payload == last), "{name}: the last record is found");
            store.write(7, b"fuzz").unwrap();
            let (_, reopened) = Store::open(SimFlash::with_image(sem, again.image(), 4096, write)).unwrap();
            assert!(matches!(reopened, Opened::Found(l) if (l.schema, l.payload.as_slice()) == (7, &b"fuzz"[..])), "{name}");
            if let Some(dir) = &dir {
                std::fs::write(dir.join(&name), seed).unwrap();
            }
            n += 1;
        }
    }
    assert_eq!(n, 6);
    if let Some(dir) = dir {
        println!("wrote {n} fuzz seeds to {}", dir.display());
    }
}

/// The System screen's wear figure (erases of each block so far) survives restarts: it is derived from the slot
/// generation on flash, and matches the erases the chip actually saw (the busier slot's count).
#[test]
fn erases_per_block_survive_reopen_and_match_the_chip() {
    let flash = SimFlash::new(Semantics::Nor, 40 * 1024, 4096, 1);
    flash.record_ops();
    let mut rng = Rng::new(8);
    let mut slot_bytes = 0;
    for round in 0..5 {
        let (mut store, _) = Store::open(flash.clone()).unwrap();
        slot_bytes = store.stats().slot_bytes;
        for _ in 0..(10 + round * 7) {
            let len = 1000 + rng.below(3000) as usize;
            store.write(SCHEMA, &rng.bytes(len)).unwrap();
        }
    }
    let erased: u64 = flash.ops().iter().filter(|o| o.erase).map(|o| o.len).sum();
    assert_eq!(erased % slot_bytes, 0, "whole slots are erased");
    let switches = erased / slot_bytes;
    assert!(switches >= 4, "the sequence switched slots several times ({switches})");
    let (store, _) = Store::open(flash.clone()).unwrap();
    assert_eq!(store.stats().erases_per_block(), switches.div_ceil(2), "generation {}", store.stats().generation);
}
