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
//! - always once less than a quarter of the limit is left above the process's
//!   `--reserve`, where the exact count at a window's end and the reserve depend on it;
//! - else if [`EVERY_MS`] passed since its last write of that bucket.
//!
//! An answer left unwritten is done, no longer in flight for the next answer's
//! reconciliation, although an answer written after it may be older (sent before it,
//! answered later) and not count its request. So the answer written carries the
//! freshest one left unwritten in its window (the lowest `remaining`) instead of its
//! own when that is fresher: the count then errs low, never high.
//!
//! The freshest answer left unwritten (the latest window's lowest `remaining`) is kept
//! and written at the next heartbeat (every 2 s) and when `work` ends
//! (`Store::write_skipped_figures`), so that the token rows end as exact as if every
//! answer had been written.
//!
//! What is remembered is only a hint, kept per process: a batch that failed is not
//! remembered as written, so its retry writes the figures.

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

type Key = (String, Bucket);

#[derive(Debug, Default)]
struct Seen {
    last: HashMap<Key, Last>,
    /// The freshest answer not written, per bucket.
    skipped: HashMap<Key, RateLimit>,
    /// The process's `--reserve`, as its claims state it.
    reserve: i64,
}

/// The buckets this process reconciled, by token fingerprint and bucket.
#[derive(Debug, Default)]
pub(super) struct Reconciled(Mutex<Seen>);

/// Whether answer `a` is fresher than `b`: a later window, or less left in the same.
fn fresher(a: &RateLimit, b: &RateLimit) -> bool {
    let key = |r: &RateLimit| (r.reset_epoch_secs, std::cmp::Reverse(r.remaining));
    key(a) > key(b)
}

impl Reconciled {
    /// Notes the process's `--reserve` (its claims carry it).
    pub fn reserve(&self, reserve: i64) {
        self.0.lock().expect("never poisoned").reserve = reserve;
    }

    /// What to write for an answer with `rate` for `token`'s `bucket` at `now`: `None`
    /// when nothing (the answer is kept as skipped if it is the freshest), else `rate`
    /// or, when fresher, the answer skipped last in its window.
    pub fn to_write(
        &self,
        token: &str,
        bucket: Bucket,
        rate: &RateLimit,
        now: i64,
    ) -> Option<RateLimit> {
        let (Some(limit), Some(_), Some(reset_secs)) =
            (rate.limit, rate.remaining, rate.reset_epoch_secs)
        else {
            return Some(rate.clone());
        };
        let mut seen = self.0.lock().expect("never poisoned");
        let key = (token.to_owned(), bucket);
        let freshest = match seen.skipped.get(&key) {
            Some(s) if s.reset_epoch_secs == Some(reset_secs) && fresher(s, rate) => s,
            _ => rate,
        };
        let remaining = freshest.remaining.unwrap_or_default();
        let near = remaining.saturating_sub(seen.reserve).saturating_mul(4) < limit;
        let due = match seen.last.get(&key) {
            Some(l) => l.reset_secs != reset_secs || now - l.at >= EVERY_MS,
            None => true,
        };
        if near || due {
            return Some(freshest.clone());
        }
        if seen.skipped.get(&key).is_none_or(|s| fresher(rate, s)) {
            seen.skipped.insert(key, rate.clone());
        }
        None
    }

    /// Remembers that an answer with `rate` was written for `token`'s `bucket` at `now`.
    pub fn written(&self, token: &str, bucket: Bucket, rate: &RateLimit, now: i64) {
        let Some(reset_secs) = rate.reset_epoch_secs else {
            return;
        };
        let mut seen = self.0.lock().expect("never poisoned");
        let key = (token.to_owned(), bucket);
        let entry = seen.last.entry(key.clone()).or_insert(Last {
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
        // A skipped answer this one is as fresh as needs no writing any more.
        if seen.skipped.get(&key).is_some_and(|s| !fresher(s, rate)) {
            seen.skipped.remove(&key);
        }
    }

    /// The skipped answers to write, in the token rows' key order; forgotten here.
    pub fn take_skipped(&self) -> Vec<(String, Bucket, RateLimit)> {
        let mut seen = self.0.lock().expect("never poisoned");
        let mut skipped: Vec<_> = seen
            .skipped
            .drain()
            .map(|((token, bucket), rate)| (token, bucket, rate))
            .collect();
        skipped.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
        skipped
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

    /// Whether an answer is written (`to_write` says what).
    fn needed(seen: &Reconciled, token: &str, bucket: Bucket, rate: &RateLimit, now: i64) -> bool {
        seen.to_write(token, bucket, rate, now).is_some()
    }

    #[test]
    fn a_window_is_written_once_a_second_while_a_quarter_is_left() {
        let seen = Reconciled::default();
        let (core, t) = (Bucket::Core, "fp");
        assert!(needed(&seen, t, core, &rate(90, 60), 0), "first answer");
        seen.written(t, core, &rate(90, 60), 0);
        assert!(
            !needed(&seen, t, core, &rate(89, 60), 500),
            "same window, soon after"
        );
        assert!(
            needed(&seen, t, core, &rate(80, 60), EVERY_MS),
            "a second later"
        );
        assert!(needed(&seen, t, core, &rate(80, 61), 500), "a new window");
        assert!(
            needed(&seen, t, core, &rate(24, 60), 500),
            "under a quarter left"
        );
        let graphql = Bucket::Graphql;
        assert!(
            needed(&seen, t, graphql, &rate(80, 60), 500),
            "another bucket"
        );
        assert!(
            needed(&seen, "other", core, &rate(80, 60), 500),
            "another token"
        );
        let unknown = RateLimit {
            limit: None,
            ..rate(80, 60)
        };
        assert!(needed(&seen, t, core, &unknown, 500), "no limit given");
    }

    #[test]
    fn the_quarter_is_counted_above_the_reserve() {
        let seen = Reconciled::default();
        let core = Bucket::Core;
        seen.written("fp", core, &rate(90, 60), 0);
        assert!(!needed(&seen, "fp", core, &rate(50, 60), 10));
        seen.reserve(30);
        assert!(
            needed(&seen, "fp", core, &rate(50, 60), 20),
            "20 above the reserve"
        );
        seen.written("fp", core, &rate(50, 60), 20);
        assert!(!needed(&seen, "fp", core, &rate(60, 60), 30), "30 above it");
    }

    #[test]
    fn an_older_window_does_not_replace_the_newer() {
        let seen = Reconciled::default();
        let core = Bucket::Core;
        seen.written("fp", core, &rate(90, 61), 0);
        seen.written("fp", core, &rate(90, 60), 10);
        assert!(!needed(&seen, "fp", core, &rate(80, 61), 500));
        assert!(needed(&seen, "fp", core, &rate(80, 60), 500));
    }

    #[test]
    fn the_freshest_skipped_answer_is_kept_until_one_as_fresh_is_written() {
        let seen = Reconciled::default();
        let core = Bucket::Core;
        seen.written("fp", core, &rate(90, 60), 0);
        assert!(!needed(&seen, "fp", core, &rate(70, 60), 10));
        assert!(
            !needed(&seen, "fp", core, &rate(80, 60), 20),
            "an older answer"
        );
        assert_eq!(seen.take_skipped(), [("fp".to_owned(), core, rate(70, 60))]);
        assert!(seen.take_skipped().is_empty(), "taken once");
        assert!(!needed(&seen, "fp", core, &rate(60, 60), 30));
        seen.written("fp", core, &rate(55, 60), 40);
        assert!(
            seen.take_skipped().is_empty(),
            "a fresher answer was written"
        );
    }

    #[test]
    fn an_answer_written_carries_the_fresher_one_skipped_in_its_window() {
        let seen = Reconciled::default();
        let core = Bucket::Core;
        seen.written("fp", core, &rate(90, 60), 0);
        assert!(!needed(&seen, "fp", core, &rate(70, 60), 10));
        // Sent before the one skipped, answered after it, a second later.
        let written = seen.to_write("fp", core, &rate(71, 60), EVERY_MS);
        assert_eq!(written, Some(rate(70, 60)));
        // A new window's answer is its own.
        let new_window = seen.to_write("fp", core, &rate(95, 61), EVERY_MS + 20);
        assert_eq!(new_window, Some(rate(95, 61)));
    }
}
