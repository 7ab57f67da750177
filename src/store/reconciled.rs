//! Which answers' rate-limit figures a process writes to its token's row.
//!
//! Every answer carries the token's `remaining` and reset, and reconciling them with
//! the estimate is a statement on the token's row (`finish::reconcile`). Claims already
//! take every request this or any other process sends off the estimate, so while a
//! bucket is far from empty an answer in the window last reconciled tells little: what
//! it could correct is quota spent outside seedq, or a 304 that cost nothing. A process
//! therefore writes a bucket's figures when they matter and at most every
//! [`EVERY_MS`] otherwise:
//! - always in a window it has not reconciled yet (a new reset), and for an answer
//!   without all of limit, remaining and reset;
//! - always once less than a quarter of the limit is left, where the exact count at a
//!   window's end and the reserve depend on it;
//! - else if [`EVERY_MS`] passed since its last write of that bucket.
//!
//! What is remembered is only a hint, kept per process: a batch that failed is not
//! remembered, so its retry writes the figures.

use crate::github::{Bucket, RateLimit};
use std::collections::HashMap;
use std::sync::Mutex;

/// How long a process may leave a bucket's figures unwritten while a quarter or more of
/// its limit is left.
pub(super) const EVERY_MS: i64 = 1000;

/// A bucket's last reconciliation by this process: its window (reset, epoch seconds
/// as sent) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Last {
    reset_secs: i64,
    at: i64,
}

/// The buckets this process reconciled, by token fingerprint and bucket.
#[derive(Debug, Default)]
pub(super) struct Reconciled(Mutex<HashMap<(String, Bucket), Last>>);

impl Reconciled {
    /// Whether an answer with `rate` for `token`'s `bucket` at `now` must be written.
    pub fn needed(&self, token: &str, bucket: Bucket, rate: &RateLimit, now: i64) -> bool {
        let (Some(limit), Some(remaining), Some(reset_secs)) =
            (rate.limit, rate.remaining, rate.reset_epoch_secs)
        else {
            return true;
        };
        if remaining.saturating_mul(4) < limit {
            return true;
        }
        let last = self.0.lock().expect("never poisoned");
        match last.get(&(token.to_owned(), bucket)) {
            Some(l) => l.reset_secs != reset_secs || now - l.at >= EVERY_MS,
            None => true,
        }
    }

    /// Remembers that an answer with `rate` was written for `token`'s `bucket` at `now`.
    pub fn written(&self, token: &str, bucket: Bucket, rate: &RateLimit, now: i64) {
        let Some(reset_secs) = rate.reset_epoch_secs else {
            return;
        };
        let mut last = self.0.lock().expect("never poisoned");
        let entry = last.entry((token.to_owned(), bucket)).or_insert(Last {
            reset_secs,
            at: now,
        });
        // A later window replaces an earlier one; an older answer changes nothing.
        if reset_secs >= entry.reset_secs {
            *entry = Last {
                reset_secs,
                at: now,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(remaining: i64, reset_secs: i64) -> RateLimit {
        RateLimit {
            limit: Some(100),
            remaining: Some(remaining),
            reset_epoch_secs: Some(reset_secs),
            ..RateLimit::default()
        }
    }

    #[test]
    fn a_window_is_written_once_a_second_while_a_quarter_is_left() {
        let seen = Reconciled::default();
        let (core, t) = (Bucket::Core, "fp");
        assert!(seen.needed(t, core, &rate(90, 60), 0), "first answer");
        seen.written(t, core, &rate(90, 60), 0);
        assert!(
            !seen.needed(t, core, &rate(80, 60), 500),
            "same window, soon after"
        );
        assert!(
            seen.needed(t, core, &rate(80, 60), EVERY_MS),
            "a second later"
        );
        assert!(seen.needed(t, core, &rate(80, 61), 500), "a new window");
        assert!(
            seen.needed(t, core, &rate(24, 60), 500),
            "under a quarter left"
        );
        assert!(
            seen.needed(t, Bucket::Graphql, &rate(80, 60), 500),
            "another bucket"
        );
        assert!(
            seen.needed("other", core, &rate(80, 60), 500),
            "another token"
        );
        let unknown = RateLimit {
            limit: None,
            ..rate(80, 60)
        };
        assert!(seen.needed(t, core, &unknown, 500), "no limit given");
    }

    #[test]
    fn an_older_window_does_not_replace_the_newer() {
        let seen = Reconciled::default();
        let core = Bucket::Core;
        seen.written("fp", core, &rate(90, 61), 0);
        seen.written("fp", core, &rate(90, 60), 10);
        assert!(!seen.needed("fp", core, &rate(80, 61), 500));
        assert!(seen.needed("fp", core, &rate(80, 60), 500));
    }
}
