//! Anti-replay sliding window for 64-bit message counters.
//!
//! This is the ring-bitmap algorithm of RFC 6479 as WireGuard implements it:
//! the window is a ring of `u64` blocks, one bit per counter. Each message
//! costs O(1); sliding forward clears at most the whole ring, so even a huge
//! jump costs at most `blocks` word writes, independent of the jump distance.
//!
//! A counter `c` is *in-window* iff no counter has been accepted yet, or
//! `c > highest`, or `highest - c <= window_size()`. An in-window counter is
//! accepted iff it has not been accepted before; any other counter is
//! rejected as [`ReplayError::TooOld`], since it can no longer be told apart
//! from a replay.

#![forbid(unsafe_code)]

use std::fmt;

/// Default window size in bits.
///
/// Messages of one session travel over several transports at once, so they
/// arrive reordered by up to the number of messages in flight. 8192 bits
/// (1 KiB per direction, WireGuard's current choice) tracks 8128 counters
/// behind the highest, enough for thousands of in-flight messages.
pub const DEFAULT_WINDOW_BITS: usize = 8192;

const BLOCK_BITS: u64 = u64::BITS as u64;
const MIN_WINDOW_BITS: usize = 128;
const MAX_WINDOW_BITS: usize = 1 << 20;

/// Why a counter was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayError {
    /// The counter was already accepted: a replay.
    Duplicate,
    /// The counter is behind the window, so a replay cannot be ruled out.
    TooOld,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duplicate => "replayed message counter",
            Self::TooOld => "message counter too old for the replay window",
        })
    }
}

impl std::error::Error for ReplayError {}

/// Sliding window over received message counters (one per direction).
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Bitmap ring; block `b` of counters (`counter / 64`) lives at `b % len`.
    ring: Box<[u64]>,
    /// Highest accepted counter; `None` until the first accept, so that
    /// counter 0 needs no sentinel.
    highest: Option<u64>,
}

impl ReplayWindow {
    /// Creates an empty window.
    ///
    /// `window_bits` is rounded up to a multiple of 64 and clamped to
    /// `128..=1 << 20`. The effective window is `bits - 64`: as in RFC 6479,
    /// one block is slack so the block being filled never aliases the oldest
    /// tracked block.
    pub fn new(window_bits: usize) -> Self {
        let blocks = window_bits
            .clamp(MIN_WINDOW_BITS, MAX_WINDOW_BITS)
            .div_ceil(BLOCK_BITS as usize);
        Self {
            ring: vec![0; blocks].into_boxed_slice(),
            highest: None,
        }
    }

    /// Number of counters behind the highest seen that are still tracked.
    pub fn window_size(&self) -> u64 {
        (self.blocks() - 1) * BLOCK_BITS
    }

    /// Would `counter` be accepted? Does not change state.
    ///
    /// Call before decrypting, to reject replays cheaply.
    /// Whether no counter has been accepted yet.
    pub fn is_empty(&self) -> bool {
        self.highest.is_none()
    }

    pub fn check(&self, counter: u64) -> Result<(), ReplayError> {
        match self.highest {
            Some(highest) if counter <= highest => {
                if highest - counter > self.window_size() {
                    Err(ReplayError::TooOld)
                } else if self.ring[self.slot(counter)] & bit(counter) != 0 {
                    Err(ReplayError::Duplicate)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Marks `counter` as seen.
    ///
    /// Call only after the AEAD tag verified, so forged messages cannot
    /// advance the window. Re-checks, returning the same errors as
    /// [`check`](Self::check).
    pub fn accept(&mut self, counter: u64) -> Result<(), ReplayError> {
        self.check(counter)?;
        if let Some(highest) = self.highest.filter(|&h| counter > h) {
            // Clear the blocks entering the window; past a full ring every
            // slot is stale, so the work is bounded by the ring length.
            let current = highest / BLOCK_BITS;
            let steps = (counter / BLOCK_BITS - current).min(self.blocks());
            for block in current + 1..=current + steps {
                let slot = self.slot(block * BLOCK_BITS);
                self.ring[slot] = 0;
            }
        }
        if self.highest.is_none_or(|h| counter > h) {
            self.highest = Some(counter);
        }
        let slot = self.slot(counter);
        self.ring[slot] |= bit(counter);
        Ok(())
    }

    fn blocks(&self) -> u64 {
        self.ring.len() as u64
    }

    /// Ring index of the block holding `counter`.
    fn slot(&self, counter: u64) -> usize {
        // The ring length is at most 2^14, so the remainder fits any usize.
        ((counter / BLOCK_BITS) % self.blocks()) as usize
    }
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_BITS)
    }
}

fn bit(counter: u64) -> u64 {
    1 << (counter % BLOCK_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn window_bits_are_rounded_and_clamped() {
        assert_eq!(ReplayWindow::new(DEFAULT_WINDOW_BITS).window_size(), 8128);
        assert_eq!(ReplayWindow::new(0).window_size(), 64);
        assert_eq!(ReplayWindow::new(129).window_size(), 128);
        assert_eq!(ReplayWindow::new(usize::MAX).window_size(), (1 << 20) - 64);
    }

    #[test]
    fn first_message_accepted() {
        for first in [0, 1, 12_345, u64::MAX] {
            let mut w = ReplayWindow::default();
            assert_eq!(w.check(first), Ok(()));
            assert_eq!(w.accept(first), Ok(()));
        }
    }

    #[test]
    fn exact_duplicate_rejected() {
        let mut w = ReplayWindow::default();
        w.accept(0).unwrap();
        assert_eq!(w.check(0), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(0), Err(ReplayError::Duplicate));
        w.accept(7).unwrap();
        assert_eq!(w.accept(7), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(0), Err(ReplayError::Duplicate));
    }

    #[test]
    fn window_edge() {
        let mut w = ReplayWindow::default();
        let size = w.window_size();
        let highest = 100_000;
        w.accept(highest).unwrap();
        assert_eq!(w.accept(highest - size), Ok(()));
        assert_eq!(w.accept(highest - size), Err(ReplayError::Duplicate));
        assert_eq!(w.check(highest - size - 1), Err(ReplayError::TooOld));
        assert_eq!(w.accept(highest - size - 1), Err(ReplayError::TooOld));
    }

    #[test]
    fn far_jump_slides_window() {
        let mut w = ReplayWindow::default();
        let size = w.window_size();
        for c in 0..100 {
            w.accept(c).unwrap();
        }
        let highest = 99 + 1_000_000;
        w.accept(highest).unwrap();
        assert_eq!(w.accept(50), Err(ReplayError::TooOld));
        assert_eq!(w.accept(highest - size), Ok(()));
        assert_eq!(w.accept(highest - size - 1), Err(ReplayError::TooOld));
        for c in highest - 200..highest {
            assert_eq!(w.accept(c), Ok(()), "counter {c}");
            assert_eq!(w.accept(c), Err(ReplayError::Duplicate), "counter {c}");
        }
    }

    #[test]
    fn jump_clears_stale_bits_that_alias_in_the_ring() {
        // Each counter aliases the slot of one a full ring earlier.
        let mut w = ReplayWindow::new(128);
        let ring_bits = 128;
        w.accept(0).unwrap();
        w.accept(1).unwrap();
        w.accept(ring_bits + 1).unwrap();
        assert_eq!(w.accept(ring_bits), Ok(()));
        let far = 10 * ring_bits;
        w.accept(far + 1).unwrap();
        assert_eq!(w.accept(far), Ok(()));
    }

    #[test]
    fn check_does_not_mutate() {
        let mut w = ReplayWindow::new(128);
        for c in [5, 1_000, 0, u64::MAX] {
            assert_eq!(w.check(c), Ok(()));
        }
        assert_eq!(w.highest, None);
        w.accept(10).unwrap();
        let before = w.clone();
        for c in [10, 11, 1_000_000, 9] {
            let _ = w.check(c);
        }
        assert_eq!(w.highest, before.highest);
        assert_eq!(w.ring, before.ring);
        assert_eq!(w.accept(1_000_000), Ok(()));
        assert_eq!(w.accept(11), Err(ReplayError::TooOld));
    }

    #[test]
    fn u64_max_boundary() {
        let mut w = ReplayWindow::default();
        let size = w.window_size();
        w.accept(u64::MAX - 1).unwrap();
        w.accept(u64::MAX).unwrap();
        assert_eq!(w.accept(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(u64::MAX - 1), Err(ReplayError::Duplicate));
        assert_eq!(w.accept(u64::MAX - 2), Ok(()));
        assert_eq!(w.accept(u64::MAX - size), Ok(()));
        assert_eq!(w.accept(u64::MAX - size - 1), Err(ReplayError::TooOld));
        assert_eq!(w.accept(0), Err(ReplayError::TooOld));

        // Jumping from 0 straight to the top of the counter space.
        let mut w = ReplayWindow::default();
        w.accept(0).unwrap();
        w.accept(u64::MAX).unwrap();
        assert_eq!(w.accept(0), Err(ReplayError::TooOld));
        assert_eq!(w.accept(u64::MAX - 1), Ok(()));
    }

    #[test]
    fn errors_display() {
        assert!(ReplayError::Duplicate.to_string().contains("replay"));
        assert!(ReplayError::TooOld.to_string().contains("too old"));
    }

    /// Reference model: the set of accepted counters plus the highest.
    struct Model {
        seen: HashSet<u64>,
        highest: Option<u64>,
        window_size: u64,
    }

    impl Model {
        fn check(&self, c: u64) -> Result<(), ReplayError> {
            let in_window = self
                .highest
                .is_none_or(|h| c > h || h - c <= self.window_size);
            if !in_window {
                Err(ReplayError::TooOld)
            } else if self.seen.contains(&c) {
                Err(ReplayError::Duplicate)
            } else {
                Ok(())
            }
        }

        fn accept(&mut self, c: u64) -> Result<(), ReplayError> {
            self.check(c)?;
            self.seen.insert(c);
            self.highest = self.highest.max(Some(c));
            Ok(())
        }
    }

    /// How the next counter is picked relative to the current highest.
    #[derive(Clone, Debug)]
    enum Step {
        Near(i64),
        Jump(u64),
        Anywhere(u64),
    }

    fn reorder_case() -> impl Strategy<Value = (usize, u64, Vec<u64>)> {
        (MIN_WINDOW_BITS..=4096usize, 0..=u64::MAX - 4096)
            .prop_flat_map(|(bits, base)| {
                let size = ReplayWindow::new(bits).window_size();
                let base = prop_oneof![Just(0), Just(base), Just(u64::MAX - size + 1)];
                (Just(bits), base, 1..=size)
            })
            .prop_flat_map(|(bits, base, n)| {
                let dups = prop::collection::vec(0..n, 0..=n as usize / 4);
                (Just(bits), Just(base), Just(n), dups)
            })
            .prop_flat_map(|(bits, base, n, dups)| {
                let counters: Vec<u64> = (0..n).chain(dups).map(|c| base + c).collect();
                (Just(bits), Just(n), Just(counters).prop_shuffle())
            })
    }

    proptest! {
        #[test]
        fn reorder_within_window((bits, n, counters) in reorder_case()) {
            let mut w = ReplayWindow::new(bits);
            let mut seen = HashSet::new();
            for c in counters {
                let expected = if seen.insert(c) { Ok(()) } else { Err(ReplayError::Duplicate) };
                prop_assert_eq!(w.check(c), expected, "check {}", c);
                prop_assert_eq!(w.accept(c), expected, "accept {}", c);
            }
            prop_assert_eq!(seen.len() as u64, n);
        }

        #[test]
        fn matches_set_model(
            bits in MIN_WINDOW_BITS..=1024usize,
            steps in prop::collection::vec(
                prop_oneof![
                    40 => (-1200i64..=70).prop_map(Step::Near),
                    4 => (0u64..20_000).prop_map(Step::Jump),
                    1 => any::<u64>().prop_map(Step::Anywhere),
                ],
                1..400,
            ),
        ) {
            let mut w = ReplayWindow::new(bits);
            let mut model = Model { seen: HashSet::new(), highest: None, window_size: w.window_size() };
            for step in steps {
                let base = model.highest.unwrap_or(0);
                let c = match step {
                    Step::Near(d) => base.saturating_add_signed(d),
                    Step::Jump(j) => base.saturating_add(j),
                    Step::Anywhere(c) => c,
                };
                prop_assert_eq!(w.check(c), model.check(c), "check {}", c);
                prop_assert_eq!(w.accept(c), model.accept(c), "accept {}", c);
                prop_assert_eq!(w.highest, model.highest);
            }
        }
    }
}
