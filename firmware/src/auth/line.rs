//! The line in front of the hashers: who waits for a hash, who goes next, and who is turned away when the
//! line is full (sans-IO; [`super::secret::Hasher`] is the shell with the threads).
//!
//! Every place in the line has a [`Seat`]: the caller's source prefix ([`super::lockout::Source`]), whether it
//! came from the LAN, and whether its source had failed before. A place's rank, best first:
//! 1. LAN before WAN: a flood from the internet cannot keep the owner at home waiting (A-F7);
//! 2. clean before failed: a source that has not failed goes before sources that have (A-F5);
//! 3. its turn: fair queuing by source (start-time fair queuing, Goyal et al. 1996, with unit cost): a place
//!    gets turn `max(now, the turn of its source's last waiting place) + 1`, where `now` is the turn last
//!    served, so one source (one /64, one WAN /24) gets one turn per round however many places it holds;
//! 4. arrival order.
//!
//! The line holds at most [`super::secret::QUEUE`] places. When it is full, a newcomer whose rank (its
//! turn counted as if it joined) is strictly better than the worst place
//! takes that place, and the worst place is answered busy; otherwise the newcomer is answered busy. A
//! source can thus hold more than one place only while nobody better-placed wants one. Ties never evict,
//! so places do not churn between equals.

use super::lockout::Source;

/// Who is asking for a hash (see the module doc for how it ranks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The caller's source prefix; `None` for work an account already signed in asked for (a new password).
    pub source: Option<Source>,
    /// The caller came from the LAN; LAN places go before WAN ones.
    pub lan: bool,
    /// The source had no failure on record when the attempt started.
    pub clean: bool,
}

/// A bounded line of waiting work `T` in rank order.
pub struct Line<T> {
    /// (arrival, turn, seat, work)
    places: Vec<(u64, u64, Seat, T)>,
    arrivals: u64,
    /// The turn last served (the virtual time of fair queuing).
    now: u64,
    capacity: usize,
}

/// Rank of a place: smaller goes first, larger is turned away first.
type Rank = (bool, bool, u64);

impl<T> Line<T> {
    /// An empty line that holds at most `capacity` places.
    pub fn new(capacity: usize) -> Line<T> {
        Line { places: Vec::new(), arrivals: 0, now: 0, capacity }
    }

    /// How many places are waiting.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether nobody is waiting.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// The turn a new place of `source` gets.
    fn turn(&self, source: Option<Source>) -> u64 {
        let last = self.places.iter().filter(|p| p.2.source == source).map(|p| p.1).max().unwrap_or(0);
        self.now.max(last) + 1
    }

    fn rank(&self, i: usize) -> (Rank, u64) {
        let (arrival, turn, seat, _) = &self.places[i];
        ((!seat.lan, !seat.clean, *turn), *arrival)
    }

    /// Take a place: `Ok(None)`, or `Ok(Some(turned_away))` when the newcomer took a worse-ranked place, or
    /// `Err(work)` when the line is full of places at least as good.
    pub fn join(&mut self, seat: Seat, work: T) -> Result<Option<T>, T> {
        let mut out = None;
        let turn = self.turn(seat.source);
        if self.places.len() >= self.capacity {
            let mine: Rank = (!seat.lan, !seat.clean, turn);
            match (0..self.places.len()).max_by_key(|&i| self.rank(i)) {
                Some(i) if self.rank(i).0 > mine => out = Some(self.places.remove(i).3),
                _ => return Err(work),
            }
        }
        self.arrivals += 1;
        self.places.push((self.arrivals, turn, seat, work));
        Ok(out)
    }

    /// The best-ranked place leaves the line for a hasher.
    pub fn serve(&mut self) -> Option<T> {
        let best = (0..self.places.len()).min_by_key(|&i| self.rank(i))?;
        let (_, turn, _, work) = self.places.remove(best);
        self.now = self.now.max(turn);
        Some(work)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(addr: &str, lan: bool, clean: bool) -> Seat {
        Seat { source: Some(Source::of(addr.parse().unwrap(), lan)), lan, clean }
    }

    #[test]
    fn one_source_cannot_fill_the_line() {
        let mut line = Line::new(4);
        let flood = seat("203.0.113.1", false, false);
        for i in 0..4 {
            assert!(line.join(flood, i).unwrap().is_none());
        }
        assert_eq!(line.join(flood, 4), Err(4), "full of its own places: busy");
        // Another source (the same /24 is the same source) takes the flood's newest place.
        assert_eq!(line.join(seat("203.0.113.200", false, false), 5), Err(5));
        assert_eq!(line.join(seat("198.51.100.1", false, false), 6), Ok(Some(3)));
        // Round robin: the newcomer's first place goes before the flood's second.
        assert_eq!(line.serve(), Some(0));
        assert_eq!(line.serve(), Some(6));
        assert_eq!(line.serve(), Some(1));
    }

    #[test]
    fn a_f5_a_clean_source_gets_in_past_a_many_source_flood() {
        let mut line = Line::new(32);
        for i in 0..32 {
            line.join(seat(&format!("127.0.3.{i}"), true, false), i).unwrap();
        }
        assert_eq!(line.join(seat("127.0.4.1", true, false), 99), Err(99), "one more failed source: busy");
        assert_eq!(line.join(seat("127.0.2.2", true, true), 100), Ok(Some(31)), "a clean source takes a place");
        assert_eq!(line.serve(), Some(100), "and goes first");
    }

    #[test]
    fn a_f7_the_wan_cannot_keep_the_lan_waiting() {
        let mut line = Line::new(8);
        for i in 0..8 {
            line.join(seat(&format!("2001:db8:{i}::1"), false, true), i).unwrap();
        }
        assert_eq!(line.join(seat("192.168.1.20", true, false), 50), Ok(Some(7)));
        assert_eq!(line.serve(), Some(50));
        assert_eq!(line.serve(), Some(0));
    }
}
