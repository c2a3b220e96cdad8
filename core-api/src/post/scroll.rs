//! Where each viewer's last served feed page ended, so the next page is a keyset seek.
//!
//! The app pages with `page` only and scrolls in order (0, 1, 2, …). An `OFFSET` costs as many
//! index entries as it skips; a seek from where page k−1 ended costs what page 0 costs. A spot is
//! remembered per viewer, feed and page size, under the feed version it was read at: any write
//! that changes what a feed shows bumps the version, so a spot is only used while the posts before
//! it are still exactly the ones page k−1 was cut from, and the answer is the `OFFSET` answer.
//!
//! In process and bounded: an instance that never served page k−1 (another instance, a restart,
//! an evicted spot) answers page k with the offset, and the answer is the same.

use std::collections::HashMap;
use std::sync::Mutex;

use super::repo::Feed;
use crate::paging::Cursor;

/// Whose scrolling a spot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScrollKey {
    /// The caller.
    pub viewer: i64,
    pub feed: Feed,
    /// Page size.
    pub size: i64,
}

/// Where a served page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spot {
    /// The feed version the page was read at.
    version: i64,
    /// The page that starts right after `after`.
    next_page: i64,
    after: Cursor,
}

/// The remembered spots, at most `capacity` of them.
#[derive(Debug)]
pub struct ScrollMemory {
    spots: Mutex<HashMap<ScrollKey, Spot>>,
    capacity: usize,
}

impl ScrollMemory {
    /// Spots kept by default: 100,000 × ~64 bytes ≈ 6 MB at most.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// Keeps at most `capacity` spots.
    pub fn new(capacity: usize) -> ScrollMemory {
        ScrollMemory {
            spots: Mutex::default(),
            capacity,
        }
    }

    fn spots(&self) -> std::sync::MutexGuard<'_, HashMap<ScrollKey, Spot>> {
        self.spots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Where `page` starts for `key` at `version`, if the page before it was served at that version.
    pub fn start_of(&self, key: &ScrollKey, version: i64, page: i64) -> Option<Cursor> {
        self.spots()
            .get(key)
            .filter(|spot| spot.version == version && spot.next_page == page)
            .map(|spot| spot.after)
    }

    /// Remembers that page `page - 1` read at `version` ended at `after`.
    pub fn remember(&self, key: ScrollKey, version: i64, page: i64, after: Cursor) {
        let mut spots = self.spots();
        if spots.len() >= self.capacity && !spots.contains_key(&key) {
            // Full: forget spots of older versions first; if none, forget any one.
            spots.retain(|_, spot| spot.version >= version);
            if spots.len() >= self.capacity {
                if let Some(victim) = spots.keys().next().copied() {
                    spots.remove(&victim);
                }
            }
        }
        spots.insert(
            key,
            Spot {
                version,
                next_page: page,
                after,
            },
        );
    }

    /// Spots held.
    pub fn len(&self) -> usize {
        self.spots().len()
    }

    /// Whether no spot is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(viewer: i64) -> ScrollKey {
        ScrollKey {
            viewer,
            feed: Feed::Home { viewer },
            size: 10,
        }
    }

    const AT: Cursor = Cursor {
        created_at: 100,
        id: 7,
    };

    #[test]
    fn a_spot_serves_only_the_next_page_at_the_same_version() {
        let memory = ScrollMemory::new(10);
        memory.remember(key(1), 5, 3, AT);
        assert_eq!(memory.start_of(&key(1), 5, 3), Some(AT));
        assert_eq!(memory.start_of(&key(1), 6, 3), None, "a write happened");
        assert_eq!(memory.start_of(&key(1), 5, 4), None, "a jump");
        assert_eq!(memory.start_of(&key(2), 5, 3), None, "another viewer");
        let other_size = ScrollKey { size: 20, ..key(1) };
        assert_eq!(memory.start_of(&other_size, 5, 3), None);
    }

    #[test]
    fn the_memory_is_bounded_and_forgets_old_versions_first() {
        let memory = ScrollMemory::new(3);
        memory.remember(key(1), 1, 1, AT);
        memory.remember(key(2), 2, 1, AT);
        memory.remember(key(3), 2, 1, AT);
        memory.remember(key(4), 2, 1, AT);
        assert_eq!(memory.len(), 3);
        assert_eq!(memory.start_of(&key(1), 1, 1), None);
        assert_eq!(memory.start_of(&key(4), 2, 1), Some(AT));
        for viewer in 5..100 {
            memory.remember(key(viewer), 2, 1, AT);
        }
        assert_eq!(memory.len(), 3);
        assert_eq!(memory.start_of(&key(99), 2, 1), Some(AT));
    }
}
