//! Which libraries a caller may see: a value the access rule (`auth::access::decide`) computes and the rooms
//! that serve items (stream, dlna, the Plex listings) apply. A set of [`LibraryId`]s as a bitset, so a caller
//! stays `Copy`.

use super::LibraryId;

/// A set of library ids (ids are 1..=255): a bitset, so the auth room's `Caller` stays `Copy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Libraries([u64; 4]);

impl Libraries {
    /// Add a library.
    pub fn insert(&mut self, id: LibraryId) {
        self.0[usize::from(id / 64)] |= 1 << (id % 64);
    }

    /// The library is in the set.
    pub fn contains(&self, id: LibraryId) -> bool {
        self.0[usize::from(id / 64)] & (1 << (id % 64)) != 0
    }
}

impl FromIterator<LibraryId> for Libraries {
    fn from_iter<I: IntoIterator<Item = LibraryId>>(ids: I) -> Libraries {
        let mut set = Libraries::default();
        for id in ids {
            set.insert(id);
        }
        set
    }
}

/// Which libraries a caller may see (see the module doc). Only the access rule (`auth::access::decide`)
/// makes one for a caller; it lives here, beside the ids it holds, so that the rooms that serve what a caller
/// sees (stream, library, dlna) can take it without reaching up into auth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visible {
    /// Every library.
    All,
    /// These libraries (of those that exist).
    Only(Libraries),
}

impl Visible {
    /// No library at all.
    pub const NOTHING: Visible = Visible::Only(Libraries([0; 4]));

    /// The caller may see library `id`.
    pub fn allows(&self, id: LibraryId) -> bool {
        match self {
            Visible::All => true,
            Visible::Only(s) => s.contains(id),
        }
    }
}
