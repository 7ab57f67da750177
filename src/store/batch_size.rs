//! What GraphQL timeouts and answers teach about a repository's batch size: halve on a
//! timeout, grow back after a run of full answers, slowly near a size that timed out.
//! The size is kept in `repos` (it survives a restart) and `status` shows it.

use super::claim::{DEFAULT_BATCH_PRS, MAX_BATCH_PRS};
use super::jobs::BatchFeedback;
use super::sql::{LearnedBatch, Sql};
use super::Result;

/// Queries answered in a row before the batch grows.
const GROW_AFTER: i64 = 20;
/// ...and, at the size just under one that timed out, before that size is tried again.
const PROBE_AFTER: i64 = 4 * GROW_AFTER;

/// A repository's batch size as learned: PRs per query, queries answered in a row, and
/// the smallest size that timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSize {
    pub prs: i64,
    pub streak: i64,
    pub ceiling: Option<i64>,
}

impl BatchSize {
    /// What one more answer teaches: a timeout halves the size (down to 1) and marks
    /// the size that timed out; a run of answers grows it by half, slowly past the mark
    /// (at most one timeout in [`PROBE_AFTER`] queries there). Only a query that asked
    /// for the full size grows it, and a query sent before the size last shrank (it
    /// asked for more) does not shrink it again.
    pub fn after(self, prs: i64, full: bool, timed_out: bool) -> BatchSize {
        let prs = prs.max(1);
        if timed_out {
            let ceiling = Some(self.ceiling.map_or(prs, |c| c.min(prs)));
            let size = if prs > self.prs { self.prs } else { prs / 2 };
            return BatchSize {
                prs: size.max(1),
                streak: 0,
                ceiling,
            };
        }
        let streak = self.streak + 1;
        if !full || self.prs >= MAX_BATCH_PRS {
            return BatchSize { streak, ..self };
        }
        let grown = (self.prs + (self.prs / 2).max(1)).min(MAX_BATCH_PRS);
        match self.ceiling {
            None if streak >= GROW_AFTER => BatchSize {
                prs: grown,
                streak: 0,
                ceiling: None,
            },
            Some(ceiling) if grown < ceiling && streak >= GROW_AFTER => BatchSize {
                prs: grown,
                streak: 0,
                ceiling: Some(ceiling),
            },
            // Just under a size that timed out: try it again now and then, one PR up.
            Some(ceiling) if streak >= PROBE_AFTER => BatchSize {
                prs: (self.prs + 1).min(MAX_BATCH_PRS),
                streak: 0,
                ceiling: Some(ceiling.max(self.prs + 2)),
            },
            _ => BatchSize { streak, ..self },
        }
    }
}

/// Records what a GraphQL query of a repository taught about its batch size.
pub(super) async fn learn(tx: &mut impl Sql, feedback: &BatchFeedback) -> Result<()> {
    let Some(learned) = tx.learned_batch(&feedback.repo).await? else {
        return Ok(());
    };
    let now = BatchSize {
        prs: learned.batch.unwrap_or(DEFAULT_BATCH_PRS),
        streak: learned.streak,
        ceiling: learned.ceiling,
    };
    let next = now.after(feedback.prs, feedback.full, feedback.timed_out);
    let next = LearnedBatch {
        batch: Some(next.prs),
        streak: next.streak,
        ceiling: next.ceiling,
    };
    tx.set_learned_batch(&feedback.repo, next, feedback.timed_out)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(prs: i64) -> BatchSize {
        BatchSize {
            prs,
            streak: 0,
            ceiling: None,
        }
    }

    #[test]
    fn a_timeout_halves_the_batch_down_to_one() {
        assert_eq!(size(32).after(32, true, true).prs, 16);
        assert_eq!(
            size(32).after(5, false, true).prs,
            2,
            "halves what was asked"
        );
        assert_eq!(size(1).after(1, true, true).prs, 1);
        assert_eq!(size(32).after(32, true, true).ceiling, Some(32));
    }

    #[test]
    fn queries_in_flight_at_the_old_size_do_not_halve_it_again() {
        let halved = size(32).after(32, true, true);
        let again = halved.after(32, true, true);
        assert_eq!(again.prs, 16);
        assert_eq!(
            again.after(16, true, true).prs,
            8,
            "one of the new size does"
        );
    }

    #[test]
    fn a_run_of_full_answers_grows_the_batch_but_not_past_a_size_that_timed_out() {
        let mut s = size(8);
        for _ in 0..GROW_AFTER {
            s = s.after(8, true, false);
        }
        assert_eq!(s.prs, 12);
        // Partly filled queries teach nothing about the size.
        let mut t = size(8);
        for _ in 0..GROW_AFTER * 3 {
            t = t.after(3, false, false);
        }
        assert_eq!(t.prs, 8);
        // Under a ceiling of 10, 9 is reached, and 10 is tried only after a long run.
        let mut c = BatchSize {
            prs: 9,
            streak: 0,
            ceiling: Some(10),
        };
        assert_eq!(c.after(9, true, false).prs, 9);
        for _ in 0..GROW_AFTER {
            c = c.after(9, true, false);
        }
        assert_eq!(c.prs, 9);
        for _ in GROW_AFTER..PROBE_AFTER {
            c = c.after(9, true, false);
        }
        assert_eq!(c.prs, 10);
    }

    #[test]
    fn at_most_one_query_in_twenty_times_out_when_a_size_keeps_timing_out() {
        // Any query of more than 12 PRs times out.
        let mut s = size(DEFAULT_BATCH_PRS);
        let (mut queries, mut timeouts) = (0, 0);
        for _ in 0..2000 {
            let asked = s.prs;
            let timed_out = asked > 12;
            queries += 1;
            timeouts += i64::from(timed_out);
            s = s.after(asked, true, timed_out);
        }
        assert!(timeouts * 20 <= queries, "{timeouts} of {queries}");
        assert!(s.prs >= 6 && s.prs <= 12, "{s:?}");
    }
}
