//! State-handle tests on the simulated flash: persistence across reopen, a failed write changes nothing, and
//! a burst of updates is coalesced without losing any acknowledged change.

use super::*;
use crate::state::decode;
use crate::store::sim::{Semantics, SimFlash};
use crate::store::{Opened, Store};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn start(flash: &SimFlash) -> Handle {
    let (store, opened) = Store::open(flash.clone()).unwrap();
    let state = match opened {
        Opened::Found(l) => decode(l.schema, &l.payload).unwrap(),
        _ => State::new([7; 16]),
    };
    Handle::start(store, state)
}

/// The state a fresh boot would load from this flash.
fn stored(flash: &SimFlash) -> State {
    let (_, opened) = Store::open(flash.fork()).unwrap();
    let Opened::Found(l) = opened else { panic!("no record on flash: {opened:?}") };
    decode(l.schema, &l.payload).unwrap()
}

/// Set the upload cap through the handle and wait for the write (the change most tests here make).
fn set_upload(rt: &tokio::runtime::Runtime, handle: &Handle, kbps: u32) {
    rt.block_on(handle.update(|s| {
        s.settings.remote.upload_kbps = kbps;
        Ok::<_, ()>(())
    }))
    .unwrap();
}

#[test]
fn an_update_is_persisted_and_survives_reopen() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    let rt = runtime();
    let handle = start(&flash);
    set_upload(&rt, &handle, 20_000);
    assert_eq!(handle.snapshot().settings.remote.upload_kbps, 20_000);
    handle.shutdown();
    let again = start(&flash);
    assert_eq!(again.snapshot().settings.remote.upload_kbps, 20_000, "the change came back after a restart");
    assert_eq!(again.snapshot().machine_id, [7; 16]);
    again.shutdown();
}

#[test]
fn a_failed_write_changes_nothing_and_says_so() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    let rt = runtime();
    let handle = start(&flash);
    set_upload(&rt, &handle, 1000);
    let before = handle.snapshot();
    let mut follower = handle.subscribe();
    follower.borrow_and_update();

    flash.fail_writes(true);
    let err = rt
        .block_on(handle.update(|s| {
            s.settings.remote.upload_kbps = 9999;
            Ok::<_, String>(())
        }))
        .unwrap_err();
    assert!(matches!(&err, UpdateError::Store(m) if m.contains("simulated write failure")), "{err}");
    assert!(err.to_string().contains("could not be saved"), "a message the page can show: {err}");
    assert_eq!(*handle.snapshot(), *before, "the published state is exactly as before");
    assert!(!follower.has_changed().unwrap(), "subscribers saw no change");
    assert_eq!(stored(&flash).settings.remote.upload_kbps, 1000, "flash still holds the previous state");

    // The next change builds on the published state, not on the one that failed.
    flash.fail_writes(false);
    rt.block_on(handle.update(|s| {
        s.settings.remote.stream_kbps = 4000;
        Ok::<_, ()>(())
    }))
    .unwrap();
    let now = handle.snapshot();
    assert_eq!((now.settings.remote.upload_kbps, now.settings.remote.stream_kbps), (1000, 4000));
    handle.shutdown();
    let s = stored(&flash);
    assert_eq!((s.settings.remote.upload_kbps, s.settings.remote.stream_kbps), (1000, 4000));
}

#[test]
fn a_burst_of_updates_is_coalesced_and_none_is_lost() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    // A slow flash, so updates queue up while the writer is busy.
    flash.set_write_delay(Some(Duration::from_millis(15)));
    let rt = runtime();
    let handle = start(&flash);
    let updates = 32u32;
    let acked = rt.block_on(async {
        let tasks: Vec<_> = (0..updates)
            .map(|i| {
                let h = handle.clone();
                tokio::spawn(async move {
                    h.update(|s| {
                        s.settings.remote.stream_kbps |= 1 << i;
                        s.settings.remote.upload_kbps += 1;
                        Ok::<_, ()>(())
                    })
                    .await
                    .map(|_| i)
                })
            })
            .collect();
        let mut acked = Vec::new();
        for t in tasks {
            acked.push(t.await.unwrap().expect("every update in the burst is acknowledged"));
        }
        acked
    });
    let records = handle.store_stats().records_written;
    println!("burst: {updates} concurrent updates -> {records} records");
    assert!(records < updates as u64, "{records} records for {updates} updates: not coalesced");
    let published = handle.snapshot();
    for i in &acked {
        assert_ne!(published.settings.remote.stream_kbps & (1 << i), 0, "acknowledged update {i} missing");
    }
    assert_eq!(published.settings.remote.upload_kbps, updates);
    handle.shutdown();
    assert_eq!(stored(&flash), *published, "what was published is what is on flash");
}

/// R-F8: an owner hammering a setting (132,367 acknowledged PUTs in 4 minutes, about 860 erases of each block)
/// wore the flash as fast as it could write. Now 1,000 updates from 10 clients in a tight loop (each waits for
/// its answer, then sends the next) cost no more records than the wear budget allows: a burst, then the
/// budget's rate. Every update is still acknowledged, only once durable, and the last state is what is stored.
#[test]
fn r_f8_sustained_updates_are_coalesced() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    // A small burst and a fast rate (about one small record every 10 ms), so the test runs in about a second.
    let budget = crate::state::wear::Budget { burst_bytes: 4096, bytes_per_hour: 36_000 * 3600 };
    let rt = runtime();
    let (store, _) = Store::open(flash.clone()).unwrap();
    let handle = Handle::start_with(store, State::new([7; 16]), budget);
    let (clients, each) = (10u32, 100u32);
    let started = std::time::Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| {
                let h = handle.clone();
                tokio::spawn(async move {
                    for _ in 0..each {
                        h.update(|s| {
                            s.settings.remote.upload_kbps += 1;
                            Ok::<_, ()>(())
                        })
                        .await
                        .expect("every update is acknowledged");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let st = handle.store_stats();
    let record = st.bytes_written / st.records_written.max(1);
    let allowed = (budget.burst_bytes as f64 + budget.bytes_per_hour as f64 / 3600.0 * elapsed) / record as f64;
    println!(
        "{} updates -> {} records ({record} bytes each) in {elapsed:.2} s; the budget allows {allowed:.0}; {} merged",
        clients * each,
        st.records_written,
        handle.wear().1
    );
    assert!(
        st.records_written as f64 <= allowed + 2.0,
        "{} records for {} updates in {elapsed:.2} s: more than the budget's {allowed:.0}",
        st.records_written,
        clients * each
    );
    let published = handle.snapshot();
    assert_eq!(published.settings.remote.upload_kbps, clients * each, "no acknowledged update is missing");
    handle.shutdown();
    assert_eq!(stored(&flash), *published, "the final state is the one on flash");
}

/// The wear budget never delays a detached change (the crash and watchdog markers) or the shutdown: both write
/// at once whatever is waiting, and its callers are answered.
#[test]
fn detached_changes_and_shutdown_do_not_wait_for_the_budget() {
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    // No burst and one byte an hour: after the first record, the next would wait for days.
    let budget = crate::state::wear::Budget { burst_bytes: 0, bytes_per_hour: 1 };
    let rt = runtime();
    let (store, _) = Store::open(flash.clone()).unwrap();
    let handle = Handle::start_with(store, State::new([7; 16]), budget);
    let set = |h: &Handle, v: u32| {
        let h = h.clone();
        rt.spawn(async move {
            h.update(move |s| {
                s.settings.remote.upload_kbps = v;
                Ok::<_, ()>(())
            })
            .await
        })
    };
    rt.block_on(set(&handle, 1)).unwrap().unwrap();
    let second = set(&handle, 2);
    std::thread::sleep(Duration::from_millis(50));
    let mut marker = handle.update_detached(|s| s.settings.remote.stream_kbps = 3).expect("a change");
    let answer = loop {
        match marker.try_recv() {
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(5)),
            other => break other,
        }
    };
    assert_eq!(answer.unwrap(), Ok(()), "the marker was written without waiting for the budget");
    rt.block_on(second).unwrap().expect("the change queued before the marker went with it");
    let s = stored(&flash);
    assert_eq!((s.settings.remote.upload_kbps, s.settings.remote.stream_kbps), (2, 3));

    let third = set(&handle, 4);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(stored(&flash).settings.remote.upload_kbps, 2, "the third change waits for the budget");
    handle.shutdown();
    rt.block_on(third).unwrap().expect("the shutdown wrote it and answered");
    assert_eq!(stored(&flash).settings.remote.upload_kbps, 4);
}

#[test]
fn held_writes_are_published_but_stay_off_flash_until_released() {
    // Issue 19: an unconfirmed firmware must not replace an older schema's record on flash.
    let flash = SimFlash::new(Semantics::Nor, 128 * 1024, 4096, 1);
    let rt = runtime();
    let handle = start(&flash);
    set_upload(&rt, &handle, 1000);
    handle.hold_writes();
    set_upload(&rt, &handle, 2000);
    rt.block_on(handle.flush());
    assert_eq!(handle.snapshot().settings.remote.upload_kbps, 2000, "the change is in force");
    assert_eq!(stored(&flash).settings.remote.upload_kbps, 1000, "but flash still holds the record from before the hold");
    assert!(handle.release_writes());
    rt.block_on(handle.rewrite()).unwrap();
    assert_eq!(stored(&flash).settings.remote.upload_kbps, 2000, "released: the newest state is written");
    assert!(!handle.release_writes(), "nothing held any more");
    handle.shutdown();
}
