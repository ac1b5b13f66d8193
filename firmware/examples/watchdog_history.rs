//! Give a stopped server's data folder a watchdog history, as a box that kept hanging would have it: `count`
//! watchdog resets in the last minutes, and the run that ended last stopped petting its watchdog (the
//! `Starving` marker). The next start records one more watchdog reset; with `count` = 2 that is three within
//! 15 minutes, so the server starts in safe mode. For tests/browser (the safe-mode banner and System screen).
//!
//! `cargo run -p hearth --example watchdog_history -- DATA_DIR COUNT`

use hearth::serve::{DEFAULT_ERASE_SIZE, DEFAULT_FLASH_SIZE, FLASH_FILE};
use hearth::state::{self, ResetReason, Run};
use hearth::store::{NorFile, Opened, Store};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, count] = args.as_slice() else {
        return Err("usage: watchdog_history DATA_DIR COUNT (stop the server first)".into());
    };
    let count: u32 = count.parse().map_err(|_| format!("COUNT is a number, not {count:?}"))?;
    let path = std::path::Path::new(dir).join(FLASH_FILE);
    let flash = NorFile::open_or_create(&path, DEFAULT_FLASH_SIZE, DEFAULT_ERASE_SIZE).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut store, opened) = Store::open(flash).map_err(|e| e.to_string())?;
    let Opened::Found(rec) = opened else { return Err(format!("{} holds no state record", path.display())) };
    let mut s = state::decode(rec.schema, &rec.payload).map_err(|e| e.to_string())?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32;
    for i in (1..=count).rev() {
        s.record_reset(ResetReason::Watchdog, now - 120 * i);
    }
    s.run = Run::Starving;
    store.write(state::SCHEMA_VERSION, &state::encode(&s).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    println!("{count} watchdog resets recorded; the last run is marked as starving");
    Ok(())
}
