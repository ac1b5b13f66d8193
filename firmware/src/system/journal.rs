//! The recent log: the last [`CAPACITY`] log lines, kept in memory for the setup page's System screen
//! (`GET /api/v1/system`, field `log`, newest last).
//!
//! Owns: the bounded ring of lines ([`Journal`], fixed capacity, the oldest line dropped first, each line cut
//! at [`LINE_MAX`] bytes). `system::logging`'s subscriber pushes every logged event (host and init mode alike);
//! a line is the event as the console shows it without colours: time, level, message, fields.
//! Nothing else is stored; the code base logs no tokens, PINs, passwords or keys, and this ring keeps it so
//! by holding only what was logged. Must not touch: what gets logged (the rooms decide) or the filter
//! (`RUST_LOG` / `hearth.log=` apply to the ring as to the console).
//!
//! Memory: at most `CAPACITY × LINE_MAX` = 80 KiB of text. The lock is taken once per logged event, never on
//! the stream path.

use std::collections::VecDeque;
use std::sync::Mutex;

/// Lines kept.
pub const CAPACITY: usize = 200;
/// Longest line kept, in bytes; longer lines are cut (at a character boundary) and end in "…".
pub const LINE_MAX: usize = 400;

/// A bounded ring of log lines.
pub struct Journal {
    lines: Mutex<VecDeque<String>>,
    capacity: usize,
}

/// The process's recent log (one per process: logging is global too).
pub static RECENT: Journal = Journal::new(CAPACITY);

impl Journal {
    /// An empty journal keeping the newest `capacity` lines (const: [`RECENT`] is a static).
    pub const fn new(capacity: usize) -> Journal {
        Journal { lines: Mutex::new(VecDeque::new()), capacity }
    }

    /// Add one entry; the oldest goes when the ring is full. Trailing newlines are dropped, long ones cut.
    pub fn push(&self, line: &str) {
        let line = line.trim_end_matches(['\n', '\r']);
        let kept = if line.len() > LINE_MAX {
            let mut end = LINE_MAX;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}\u{2026}", &line[..end])
        } else {
            line.to_string()
        };
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if self.capacity == 0 {
            return;
        }
        if lines.len() == self.capacity {
            lines.pop_front();
        } else if lines.capacity() == 0 {
            lines.reserve_exact(self.capacity);
        }
        lines.push_back(kept);
    }

    /// The lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_in_order_and_never_more_than_its_capacity() {
        let j = Journal::new(3);
        assert!(j.lines().is_empty());
        j.push("one\n");
        j.push("two");
        assert_eq!(j.lines(), ["one", "two"]);
        for l in ["three", "four", "five"] {
            j.push(l);
        }
        assert_eq!(j.lines(), ["three", "four", "five"], "oldest dropped first, newest last");
        for i in 0..1000 {
            j.push(&format!("line {i}"));
        }
        assert_eq!(j.lines(), ["line 997", "line 998", "line 999"]);
    }

    #[test]
    fn cuts_long_lines_at_a_character_boundary() {
        let j = Journal::new(2);
        let long = "é".repeat(LINE_MAX); // 2 bytes each
        j.push(&long);
        let kept = &j.lines()[0];
        assert!(kept.len() <= LINE_MAX + '\u{2026}'.len_utf8(), "{}", kept.len());
        assert!(kept.ends_with('\u{2026}'));
        assert!(kept.trim_end_matches('\u{2026}').chars().all(|c| c == 'é'));
    }
}
