//! The recent log: the last [`CAPACITY`] log lines, kept in memory for the setup page's System screen
//! (`GET /api/v1/system`, field `log`, newest last).
//!
//! Owns: the bounded ring of lines ([`Journal`], fixed capacity, the oldest line dropped first, each line cut
//! at [`LINE_MAX`] bytes) and the writer that tracing-subscriber's formatting layer writes each event into
//! ([`Journal::writer`]; `system::logging::init_to` installs it beside stderr, so host and init mode both
//! fill it). A line is the event as the console shows it without colours: time, level, message, fields.
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

    /// A writer for one formatted event (tracing-subscriber's `MakeWriter` makes one per event): the bytes
    /// become one entry when it is dropped (a message with a newline stays one entry).
    pub fn writer(&'static self) -> EventLines {
        EventLines { journal: self, buf: Vec::new() }
    }
}

/// What one event's formatter wrote; pushed to the journal as one entry on drop.
pub struct EventLines {
    journal: &'static Journal,
    buf: Vec<u8>,
}

impl std::io::Write for EventLines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        // One event's text; a runaway event cannot grow it past a few lines' worth.
        let room = (4 * LINE_MAX).saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&b[..b.len().min(room)]);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventLines {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        if !text.trim().is_empty() {
            self.journal.push(&text);
        }
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

    #[test]
    fn formatted_events_arrive_as_lines_with_level_message_and_fields() {
        use tracing_subscriber::prelude::*;
        static J: Journal = Journal::new(2);
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_writer(|| J.writer()).with_ansi(false).with_target(false));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(peer = "192.0.2.7", "sign-in refused");
            tracing::info!(n = 1, "first");
            tracing::info!(n = 2, "second\nwith a second line");
        });
        let lines = J.lines();
        assert_eq!(lines.len(), 2, "the oldest event was dropped: {lines:?}");
        assert!(lines[0].contains("INFO") && lines[0].contains("first") && lines[0].contains("n=1"), "{lines:?}");
        assert!(lines[1].contains("second\nwith a second line") && lines[1].contains("n=2"), "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains('\u{1b}')), "no colour codes: {lines:?}");
    }
}
