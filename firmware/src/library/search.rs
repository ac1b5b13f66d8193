//! Finding items by title, and walking a library in order without copying it: what search, "Recently
//! added" and the pages of a 10,000-item listing read (sans-IO; the http room renders what this finds).
//!
//! Titles match case- and accent-insensitively. Both sides are folded by [`fold`]: lower case (std's Unicode
//! case mapping), the Latin letters with diacritics of Latin-1 Supplement and Latin Extended-A to their base
//! letters (`é`→`e`, `ø`→`o`, `ł`→`l`; `ß`→`ss`, `æ`→`ae`, `œ`→`oe`, `þ`→`th`), and combining marks
//! U+0300–U+036F dropped, so a name stored decomposed (as macOS writes file names) matches its composed
//! spelling. No normalisation crate (binary size): other scripts match by case only.
//!
//! The catalog keeps its records in title order and newest first (made once per scan, in the shelves), so a
//! page at offset 9,900 costs a walk over fixed-size records and the views of the 100 items shown, not a
//! copy and a sort of the whole library.

use super::kind::Media;
use super::{Catalog, Episode, Group, ItemId};
use crate::state::LibraryId;

/// The longest search text accepted, in bytes (a title someone types; longer is refused with a message).
pub const MAX_QUERY: usize = 256;

/// `c` as folded text: lower case without diacritics, written to `out`.
fn fold_char(c: char, out: &mut String) {
    for l in c.to_lowercase() {
        let base = match l {
            // Combining diacritical marks (decomposed names): dropped.
            '\u{300}'..='\u{36f}' => continue,
            'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
            'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
            'ð' | 'ď' | 'đ' => 'd',
            'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
            'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
            'ĥ' | 'ħ' => 'h',
            'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
            'ĵ' => 'j',
            'ķ' => 'k',
            'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
            'ñ' | 'ń' | 'ņ' | 'ň' | 'ŉ' => 'n',
            'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
            'ŕ' | 'ŗ' | 'ř' => 'r',
            'ś' | 'ŝ' | 'ş' | 'š' | 'ſ' => 's',
            'ţ' | 'ť' | 'ŧ' => 't',
            'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
            'ŵ' => 'w',
            'ý' | 'ÿ' | 'ŷ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            'ß' => {
                out.push_str("ss");
                continue;
            }
            'æ' => {
                out.push_str("ae");
                continue;
            }
            'œ' => {
                out.push_str("oe");
                continue;
            }
            'þ' => {
                out.push_str("th");
                continue;
            }
            other => other,
        };
        out.push(base);
    }
}

/// `s` folded for matching (see the module doc).
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    s.chars().for_each(|c| fold_char(c, &mut out));
    out
}

/// A folded search text, matched against titles.
#[derive(Clone, Debug)]
pub struct Needle {
    folded: String,
    /// Reused for each title (no allocation per title once it has grown).
    scratch: String,
}

impl Needle {
    /// The needle for `text` (trimmed); None when nothing is left to search for.
    pub fn new(text: &str) -> Option<Needle> {
        let folded = fold(text.trim());
        (!folded.is_empty()).then(|| Needle { folded, scratch: String::new() })
    }

    /// How well `title` matches, best first: 0 it starts with the text, 1 a word in it does, 2 the text is
    /// elsewhere in it; None when it does not contain the text.
    pub fn rank(&mut self, title: &str) -> Option<u8> {
        self.scratch.clear();
        title.chars().for_each(|c| fold_char(c, &mut self.scratch));
        let hay = &self.scratch;
        let mut best = None;
        for (at, _) in hay.match_indices(self.folded.as_str()) {
            let rank = if at == 0 {
                0
            } else if hay[..at].ends_with(|c: char| !c.is_alphanumeric()) {
                1
            } else {
                2
            };
            best = Some(best.map_or(rank, |b: u8| b.min(rank)));
            if rank == 0 {
                break;
            }
        }
        best
    }

    /// Whether `title` contains the text (folded).
    pub fn matches(&mut self, title: &str) -> bool {
        self.rank(title).is_some()
    }
}

/// The order of a walk over items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// By title, case-insensitively, then by id (the order of every item listing).
    Title,
    /// Newest `added` first, then the higher id.
    Newest,
}

/// What a walk shows of one item, borrowed from the catalog (nothing copied).
#[derive(Debug)]
pub struct Glance<'a> {
    pub id: ItemId,
    pub library: LibraryId,
    pub media: Media,
    pub title: &'a str,
    /// Unix seconds when first seen.
    pub added: u32,
    /// Show/season, artist/album or photo album (see [`super::Item::episode`]).
    pub episode: Option<Episode>,
}

impl Catalog {
    /// Call `f` for every item, in `order`. The catalog is read-locked meanwhile: `f` must not call the
    /// catalog.
    pub fn each_item(&self, order: Order, mut f: impl FnMut(&Glance<'_>)) {
        let sh = self.shelves.read().unwrap();
        for r in sh.ordered(order == Order::Newest) {
            f(&Glance {
                id: r.id,
                library: r.library,
                media: r.media,
                title: sh.title(r),
                added: r.added(),
                episode: r.episode(),
            });
        }
    }

    /// The ids of the items `keep` keeps, in `order`.
    pub fn item_ids(&self, order: Order, mut keep: impl FnMut(&Glance<'_>) -> bool) -> Vec<ItemId> {
        let mut ids = Vec::new();
        self.each_item(order, |g| {
            if keep(g) {
                ids.push(g.id);
            }
        });
        ids
    }

    /// The groups (shows, seasons, artists, albums, photo albums) `keep` keeps, by id.
    pub fn groups_where(&self, mut keep: impl FnMut(&Group) -> bool) -> Vec<Group> {
        let sh = self.shelves.read().unwrap();
        sh.groups.iter().filter(|g| keep(g)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_accents() {
        assert_eq!(fold("Amélie"), "amelie");
        assert_eq!(fold("ÉCOLE Ørsted Łódź"), "ecole orsted lodz");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Æon Flux"), "aeon flux");
        // Decomposed (NFD, as macOS names files): e + U+0301.
        assert_eq!(fold("Ame\u{301}lie"), "amelie");
        // Other scripts: case only.
        assert_eq!(fold("ΑΘΗΝΑ"), "αθηνα");
    }

    #[test]
    fn a_needle_ranks_starts_words_and_insides() {
        let mut n = Needle::new("  amé ").unwrap();
        assert_eq!(n.rank("Amélie"), Some(0));
        assert_eq!(n.rank("Le Fabuleux Destin d'Amelie"), Some(1));
        assert_eq!(n.rank("Flamethrower"), Some(2));
        assert_eq!(n.rank("Metropolis"), None);
        // A later word start beats an earlier inside match.
        assert_eq!(n.rank("Camera Amélie"), Some(1));
        assert!(Needle::new("   ").is_none());
        assert!(Needle::new("").is_none());
    }
}
