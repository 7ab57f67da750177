//! Adaptive concurrency per token: how many requests each token may have in flight in
//! this process, learned from GitHub's secondary limits (additive increase,
//! multiplicative decrease, as TCP finds a path's capacity), and its requests per
//! minute kept under GitHub's documented secondary limits.
//!
//! Which token serves a claim is still decided in SQL (the one with the most quota);
//! this side decides which tokens the claim may choose from. Before a claim, a worker
//! holds a place on every token that has one free ([`Lanes::hold_free`]); the claim
//! chooses among those; the worker then keeps the chosen token's place for its request
//! and gives back the others ([`Hold::keep`]). A place is never promised twice, so a
//! token never has more requests in flight than its lane allows, even with claims
//! running side by side.
//!
//! - A secondary limit halves the requests the token had in flight (at least 1) and
//!   remembers the size refused (the lane if it was full, else one more than counted:
//!   requests of other tasks may reach the server first). The refusals of requests sent before
//!   that cut teach nothing more (they were sent under the old size). Climbing back
//!   to the refused size takes a long run of successes ([`PROBE_AFTER`]) and
//!   [`PROBE_PAUSE_MS`] since the cut: a refusal costs the token its `retry-after`
//!   (a minute, on GitHub), so a server's limit is probed rarely instead of hit every
//!   few requests.
//! - Below that, a run of successes as long as the lane raises it by one.
//! - A lane never exceeds `--workers` nor [`MAX_IN_FLIGHT`].
//! - Requests sent in the last minute count against [`REST_PER_MINUTE`] and
//!   [`GRAPHQL_PER_MINUTE`]: a token at either has no free place until the oldest
//!   request is a minute old.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;

/// GitHub: no more than 100 concurrent requests, REST and GraphQL together.
pub const MAX_IN_FLIGHT: usize = 100;
/// GitHub: no more than 900 points a minute for REST (a GET is one point).
pub const REST_PER_MINUTE: usize = 900;
/// GitHub: no more than 2,000 points a minute for GraphQL (a query is one point).
pub const GRAPHQL_PER_MINUTE: usize = 2_000;
/// Successes in a row before a lane climbs back to the size last refused...
pub const PROBE_AFTER: usize = 200;
/// ...and how long after the refusal, at least.
pub const PROBE_PAUSE_MS: i64 = 10 * 60_000;
/// The span the per-minute limits count over, in ms.
const MINUTE_MS: i64 = 60_000;

/// Which API a request went to, for the per-minute counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Rest,
    Graphql,
}

/// How an answer bears on the token's lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The server took the request (any answer but a secondary limit or a failure of
    /// the connection).
    Taken,
    /// A secondary limit, with the time to send nothing on the token (its
    /// `retry-after`), in ms.
    Secondary { pause_ms: i64 },
    /// Nothing learned (a network error, a 5xx).
    Neutral,
}

/// Limits of one process's lanes.
#[derive(Debug, Clone, Copy)]
pub struct LaneLimits {
    /// The largest lane: `--workers`, and never above [`MAX_IN_FLIGHT`].
    pub cap: usize,
    /// Requests a token may send a minute (`usize::MAX`: no limit).
    pub rest_per_minute: usize,
    pub graphql_per_minute: usize,
}

impl LaneLimits {
    /// GitHub's limits, for `workers` worker tasks.
    pub fn new(workers: usize) -> LaneLimits {
        LaneLimits {
            cap: workers.clamp(1, MAX_IN_FLIGHT),
            rest_per_minute: REST_PER_MINUTE,
            graphql_per_minute: GRAPHQL_PER_MINUTE,
        }
    }

    /// The same with other per-minute limits (0: none), for a server whose secondary
    /// limits are not GitHub.com's (`SEEDQ_REST_PER_MINUTE`, `SEEDQ_GRAPHQL_PER_MINUTE`).
    pub fn per_minute(mut self, rest: usize, graphql: usize) -> LaneLimits {
        let none_if_0 = |n: usize| if n == 0 { usize::MAX } else { n };
        self.rest_per_minute = none_if_0(rest);
        self.graphql_per_minute = none_if_0(graphql);
        self
    }
}

#[derive(Debug)]
struct Lane {
    /// Places held: requests in flight and claims in progress that may choose it.
    held: usize,
    /// Requests sent and not answered yet.
    in_flight: usize,
    /// Places it has now.
    limit: usize,
    /// Answers taken since the limit last changed.
    streak: usize,
    /// The size a secondary limit last refused, while the lane is below it.
    refused_at: Option<usize>,
    /// When a secondary limit last cut the lane (epoch ms).
    cut_at: i64,
    /// The end of the `retry-after` of the last cut (epoch ms): refusals of requests
    /// sent before it are that cut's (the store keeps the token paused till then).
    paused_until: i64,
    /// When its recent requests were sent (epoch ms), per API, oldest first.
    rest_sent: VecDeque<i64>,
    graphql_sent: VecDeque<i64>,
}

impl Lane {
    fn new(limit: usize) -> Lane {
        Lane {
            held: 0,
            in_flight: 0,
            limit,
            streak: 0,
            refused_at: None,
            cut_at: i64::MIN,
            paused_until: i64::MIN,
            rest_sent: VecDeque::new(),
            graphql_sent: VecDeque::new(),
        }
    }

    fn forget_before(&mut self, since: i64) {
        for sent in [&mut self.rest_sent, &mut self.graphql_sent] {
            while sent.front().is_some_and(|&at| at <= since) {
                sent.pop_front();
            }
        }
    }

    fn has_room(&mut self, limits: &LaneLimits, now: i64) -> bool {
        self.forget_before(now - MINUTE_MS);
        self.held < self.limit
            && self.rest_sent.len() < limits.rest_per_minute
            && self.graphql_sent.len() < limits.graphql_per_minute
    }

    /// When the per-minute counts next give room (the oldest request turns a minute
    /// old), if they are what is full.
    fn minute_frees_at(&self, limits: &LaneLimits) -> Option<i64> {
        let full = |sent: &VecDeque<i64>, max: usize| {
            (sent.len() >= max)
                .then(|| sent.front().map(|&at| at + MINUTE_MS))
                .flatten()
        };
        let rest = full(&self.rest_sent, limits.rest_per_minute);
        let graphql = full(&self.graphql_sent, limits.graphql_per_minute);
        rest.into_iter().chain(graphql).max()
    }
}

/// Every token's lane, in the pool's token order.
#[derive(Debug)]
pub struct Lanes {
    lanes: Mutex<Vec<Lane>>,
    limits: LaneLimits,
    /// Rung when a place is given back or a lane grows.
    freed: Notify,
}

impl Lanes {
    /// `tokens` lanes, each starting at the cap: nothing is held back until a server
    /// says so.
    pub fn new(tokens: usize, limits: LaneLimits) -> Lanes {
        Lanes {
            lanes: Mutex::new((0..tokens).map(|_| Lane::new(limits.cap)).collect()),
            limits,
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Lane>> {
        self.lanes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Holds a place on every token that has one free, and keeps `kept` (a place the
    /// caller holds already, for its next claim). `None` when no token has one.
    pub fn hold_free(self: &Arc<Self>, kept: Option<usize>, now: i64) -> Option<Hold> {
        let mut lanes = self.lock();
        let mut held = Vec::new();
        for (index, lane) in lanes.iter_mut().enumerate() {
            if Some(index) == kept {
                // Its place is held already; the minute's counts still apply.
                lane.held = lane.held.saturating_sub(1);
            }
            if lane.has_room(&self.limits, now) {
                lane.held += 1;
                held.push(index);
            }
        }
        let every = held.len() == lanes.len();
        drop(lanes);
        if held.is_empty() {
            if kept.is_some() {
                self.freed.notify_waiters();
            }
            return None;
        }
        Some(Hold {
            lanes: self.clone(),
            held,
            every,
            kept: None,
            sent_with: 0,
        })
    }

    /// How long a worker with no free place waits before looking again: until a
    /// minute's count gives room, at most 250 ms (a place given back wakes it sooner,
    /// see [`Lanes::wait_for_room`]).
    pub async fn wait_for_room(&self, now: i64) {
        let freed = self.freed.notified();
        let wait = {
            let lanes = self.lock();
            let soonest = lanes
                .iter()
                .filter(|l| l.held < l.limit)
                .filter_map(|l| l.minute_frees_at(&self.limits))
                .min();
            soonest.map_or(250, |at| (at - now).clamp(1, 250))
        };
        tokio::select! {
            _ = freed => {}
            _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
        }
    }

    /// Learns from an answer to a request of token `index` sent at `sent_at` as one of
    /// `sent_with` in flight ([`Hold::sent_with`]).
    pub fn answered(&self, index: usize, answer: Answer, sent: (i64, usize), now: i64) {
        let (sent_at, sent_with) = sent;
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(index) else {
            return;
        };
        // What was in flight: when it was sent, or now if more (requests of other tasks
        // may have reached the server first); erring high costs at most one more
        // refusal, erring low a lane kept too small until the next probe.
        let in_flight = sent_with.max(lane.in_flight).clamp(1, lane.limit);
        lane.in_flight = lane.in_flight.saturating_sub(1);
        // Sent before the last cut, or during its pause (by a claim already under
        // way): the cut has answered for it.
        let before_cut = sent_at < lane.cut_at.max(lane.paused_until);
        match answer {
            Answer::Secondary { .. } if before_cut => {}
            Answer::Secondary { pause_ms } => {
                lane.paused_until = lane.paused_until.max(now + pause_ms);
                // The size refused: the lane, when it was full; else one more than
                // counted here (the server saw at least that many).
                let refused = match in_flight >= lane.limit {
                    true => lane.limit,
                    false => in_flight + 1,
                };
                tracing::debug!(
                    "token {index}: a secondary limit with {in_flight} in flight; its lane \
                     goes from {} to {}, and {refused} waits",
                    lane.limit,
                    (in_flight / 2).max(1)
                );
                lane.refused_at = Some(refused);
                lane.limit = (in_flight / 2).max(1);
                lane.streak = 0;
                lane.cut_at = now;
            }
            // Successes count toward a larger lane only under the current one.
            Answer::Taken if lane.limit < self.limits.cap && sent_at >= lane.cut_at => {
                lane.streak += 1;
                let probing = lane.refused_at.is_some_and(|at| lane.limit + 1 >= at);
                let needed = if probing { PROBE_AFTER } else { lane.limit };
                let waited = !probing || now - lane.cut_at >= PROBE_PAUSE_MS;
                if lane.streak >= needed && waited {
                    lane.limit += 1;
                    lane.streak = 0;
                    if lane.refused_at.is_some_and(|at| lane.limit >= at) {
                        lane.refused_at = None;
                    }
                    drop(lanes);
                    self.freed.notify_waiters();
                }
            }
            Answer::Taken | Answer::Neutral => {}
        }
    }

    /// Each token's lane now: the requests it may have in flight.
    pub fn limits(&self) -> Vec<usize> {
        self.lock().iter().map(|l| l.limit).collect()
    }

    fn release(&self, indexes: &[usize]) {
        if indexes.is_empty() {
            return;
        }
        let mut lanes = self.lock();
        for &index in indexes {
            if let Some(lane) = lanes.get_mut(index) {
                lane.held = lane.held.saturating_sub(1);
            }
        }
        drop(lanes);
        self.freed.notify_waiters();
    }

    /// Counts a request sent on token `index`: the requests it has in flight now.
    fn sent(&self, index: usize, api: Api, now: i64) -> usize {
        let mut lanes = self.lock();
        let Some(lane) = lanes.get_mut(index) else {
            return 0;
        };
        lane.in_flight += 1;
        match api {
            Api::Rest => lane.rest_sent.push_back(now),
            Api::Graphql => lane.graphql_sent.push_back(now),
        }
        lane.in_flight
    }
}

/// Places a worker holds: before a claim, one on each token the claim may choose; after
/// it, one on the token chosen. Dropping it gives them back.
#[derive(Debug)]
pub struct Hold {
    lanes: Arc<Lanes>,
    held: Vec<usize>,
    /// Whether every token had a place: if not, a claim that found no token with quota
    /// may find one once a place frees.
    every: bool,
    /// The token whose place is kept for a request.
    kept: Option<usize>,
    /// The requests that token had in flight when this one was sent, itself included.
    sent_with: usize,
}

impl Hold {
    /// The tokens held, by their index in the pool.
    pub fn indexes(&self) -> &[usize] {
        &self.held
    }

    /// Whether every token of the pool is held (so a claim that found no quota saw all).
    pub fn every(&self) -> bool {
        self.every
    }

    /// The requests the kept token had in flight when this one was sent, itself
    /// included: what a secondary limit on it refused.
    pub fn sent_with(&self) -> usize {
        self.sent_with
    }

    /// Keeps `index`'s place for a request to `api` sent now, and gives back the others.
    /// A token not held (the claim chose outside the hold) keeps nothing.
    pub fn keep(&mut self, index: usize, api: Api, now: i64) {
        let others: Vec<usize> = self.held.iter().copied().filter(|&i| i != index).collect();
        self.lanes.release(&others);
        if self.held.contains(&index) {
            self.held = vec![index];
            self.kept = Some(index);
            self.sent_with = self.lanes.sent(index, api, now);
        } else {
            self.held.clear();
            self.kept = None;
        }
    }

    /// Holds, beside the kept place, a place on every other token with one free: for
    /// the claim made with the completion of this request. `None` when none is free
    /// (the kept one at its minute's count).
    pub fn widen(mut self, now: i64) -> Option<Hold> {
        let lanes = self.lanes.clone();
        let kept = self.kept.take();
        // The kept place passes to the new hold without being given back in between.
        self.held.retain(|&i| Some(i) != kept);
        drop(self);
        lanes.hold_free(kept, now)
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.lanes.release(&self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(tokens: usize, cap: usize) -> Arc<Lanes> {
        Arc::new(Lanes::new(tokens, LaneLimits::new(cap)))
    }

    #[test]
    fn a_place_is_never_promised_twice() {
        let lanes = lanes(2, 2);
        let a = lanes.hold_free(None, 0).unwrap();
        let b = lanes.hold_free(None, 0).unwrap();
        assert_eq!(a.indexes(), [0, 1]);
        assert_eq!(b.indexes(), [0, 1]);
        // Both places of both tokens are held by the two claims in progress.
        assert!(lanes.hold_free(None, 0).is_none());
        let mut a = a;
        a.keep(0, Api::Rest, 0);
        // Token 1's place came back.
        let c = lanes.hold_free(None, 0).unwrap();
        assert_eq!(c.indexes(), [1]);
        assert!(!c.every());
        drop(b);
        drop(c);
        let d = lanes.hold_free(None, 0).unwrap();
        assert_eq!(d.indexes(), [0, 1]);
    }

    /// `n` requests of token 0 in flight.
    fn busy(lanes: &Arc<Lanes>, n: usize) -> Vec<Hold> {
        (0..n)
            .map(|_| {
                let mut hold = lanes.hold_free(None, 0).unwrap();
                hold.keep(0, Api::Rest, 0);
                hold
            })
            .collect()
    }

    /// `n` answers taken at `now` (each sent as the only one in flight).
    fn taken(lanes: &Lanes, n: usize, now: i64) {
        for _ in 0..n {
            lanes.answered(0, Answer::Taken, (now, 1), now);
        }
    }

    const REFUSED: Answer = Answer::Secondary { pause_ms: 1000 };

    #[test]
    fn a_secondary_limit_halves_what_was_in_flight_and_climbing_back_waits() {
        let lanes = lanes(1, 4);
        // Refused as the 4th in flight, the lane full.
        lanes.answered(0, REFUSED, (10, 4), 100);
        assert_eq!(lanes.limits(), [2]);
        // Refusals of requests sent before the cut teach nothing more.
        lanes.answered(0, REFUSED, (50, 2), 110);
        assert_eq!(lanes.limits(), [2]);
        // Nor do those sent during its retry-after (by a claim already under way).
        lanes.answered(0, REFUSED, (1099, 1), 1120);
        assert_eq!(lanes.limits(), [2]);
        // Successes of requests sent before the cut do not grow the new lane.
        lanes.answered(0, Answer::Taken, (50, 1), 1150);
        lanes.answered(0, Answer::Taken, (60, 1), 1150);
        assert_eq!(lanes.limits(), [2]);
        // Below the size refused (4): a run as long as the lane adds one.
        taken(&lanes, 2, 1200);
        assert_eq!(lanes.limits(), [3]);
        // Back to 4 only after PROBE_AFTER successes *and* PROBE_PAUSE_MS.
        taken(&lanes, PROBE_AFTER + 50, 1300);
        assert_eq!(lanes.limits(), [3]);
        taken(&lanes, 1, 100 + PROBE_PAUSE_MS);
        assert_eq!(lanes.limits(), [4]);
        // Never past the cap.
        taken(&lanes, 100, 100 + PROBE_PAUSE_MS);
        assert_eq!(lanes.limits(), [4]);
        lanes.answered(0, Answer::Neutral, (0, 1), 0);
        assert_eq!(lanes.limits(), [4]);
    }

    #[test]
    fn a_refusal_below_a_full_lane_takes_the_server_to_have_seen_one_more() {
        let lanes = lanes(1, 8);
        // Counted 3rd here, refused: the server saw at least 4.
        lanes.answered(0, REFUSED, (10, 3), 100);
        assert_eq!(lanes.limits(), [1]);
        // 2 and 3 come quickly; 4 waits for the probe.
        taken(&lanes, 1, 1200);
        taken(&lanes, 2, 1200);
        assert_eq!(lanes.limits(), [3]);
        taken(&lanes, PROBE_AFTER + 10, 1300);
        assert_eq!(lanes.limits(), [3]);
    }

    #[test]
    fn the_lane_never_goes_below_one() {
        let lanes = lanes(1, 1);
        lanes.answered(0, REFUSED, (0, 1), 100);
        lanes.answered(0, REFUSED, (200, 1), 300);
        assert_eq!(lanes.limits(), [1]);
    }

    #[test]
    fn a_hold_remembers_how_many_were_in_flight_when_its_request_went() {
        let lanes = lanes(1, 8);
        let first = busy(&lanes, 2);
        assert_eq!(
            first.iter().map(Hold::sent_with).collect::<Vec<_>>(),
            [1, 2]
        );
    }

    #[test]
    fn requests_per_minute_close_a_token_until_the_oldest_is_a_minute_old() {
        let limits = LaneLimits {
            cap: 10,
            rest_per_minute: 3,
            graphql_per_minute: 5,
        };
        let lanes = Arc::new(Lanes::new(1, limits));
        for at in [0, 10, 20] {
            let mut hold = lanes.hold_free(None, at).unwrap();
            hold.keep(0, Api::Rest, at);
        }
        assert!(lanes.hold_free(None, 30).is_none());
        assert!(lanes.hold_free(None, MINUTE_MS - 1).is_none());
        assert!(lanes.hold_free(None, MINUTE_MS).is_some());
    }

    #[test]
    fn widening_keeps_the_kept_place_and_adds_the_free_ones() {
        let lanes = lanes(3, 1);
        let mut hold = lanes.hold_free(None, 0).unwrap();
        hold.keep(1, Api::Graphql, 0);
        // Token 2 taken by another worker's request.
        let mut other = lanes.hold_free(None, 0).unwrap();
        other.keep(2, Api::Rest, 0);
        let hold = hold.widen(0).unwrap();
        assert_eq!(hold.indexes(), [0, 1]);
        assert!(!hold.every());
        drop(other);
        drop(hold);
        assert_eq!(lanes.hold_free(None, 0).unwrap().indexes(), [0, 1, 2]);
    }
}
