//! When will the seed finish? From the requests left, each token's quota and reset
//! time, and the throughput seen, this walks forward through the tokens' resets: the
//! seed finishes when enough quota has come in *and* the workers have had the time to
//! spend it. It is an estimate: the number of PRs still to list is itself guessed
//! (see `store::status`), and the rate moves.

use crate::store::tokens::TokenRow;

/// GitHub's primary rate-limit window. `SEEDQ_RATE_WINDOW_SECS` overrides it for
/// servers with shorter windows (the bundled fake GitHub).
pub const DEFAULT_WINDOW_MS: i64 = 3_600_000;

/// The rate-limit window in force (see [`DEFAULT_WINDOW_MS`]).
pub fn window_ms() -> i64 {
    std::env::var("SEEDQ_RATE_WINDOW_SECS")
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .map_or(DEFAULT_WINDOW_MS, |s| (s * 1000.0) as i64)
}

/// One token's quota as the estimate sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    pub remaining: i64,
    pub limit: i64,
    /// End of the current window (epoch ms), when known.
    pub reset_at: Option<i64>,
    /// Nothing may be sent before this (a secondary-limit pause), epoch ms.
    pub paused_until: Option<i64>,
}

/// Pages a GraphQL point fetches, about: a query of one point carries up to 149
/// connection pages of PRs (and their PR fields for free), a list query one page.
pub const PAGES_PER_POINT: i64 = 100;

impl Quota {
    /// The usable tokens' quotas (invalid tokens add nothing), in pages: each token's
    /// REST requests, and its GraphQL points once `work` has used them.
    pub fn of(rows: &[TokenRow]) -> Vec<Quota> {
        let usable = rows.iter().filter(|t| t.state != "invalid");
        let rest = usable.clone().map(|t| Quota {
            remaining: t.remaining,
            limit: t.quota_limit,
            reset_at: t.reset_at,
            paused_until: t.paused_until,
        });
        let graphql = usable.filter(|t| t.graphql.requests > 0).map(|t| Quota {
            remaining: t.graphql.remaining.saturating_mul(PAGES_PER_POINT),
            limit: t.graphql.quota_limit.saturating_mul(PAGES_PER_POINT),
            reset_at: t.graphql.reset_at,
            paused_until: t.paused_until,
        });
        rest.chain(graphql).collect()
    }
}

/// When every usable token is out of quota (or paused): the time the first one can be
/// used again. `None` while some token can send now, or when no token is usable.
pub fn paused_until(tokens: &[Quota], now: i64) -> Option<i64> {
    let mut earliest: Option<i64> = None;
    for t in tokens {
        let paused = t.paused_until.filter(|&p| p > now);
        let spent = t.remaining <= 0 && t.reset_at.is_some_and(|r| r > now);
        let back = match (paused, spent) {
            (Some(p), true) => p.max(t.reset_at.unwrap_or(p)),
            (Some(p), false) => p,
            (None, true) => t.reset_at.unwrap_or(now),
            (None, false) => return None,
        };
        earliest = Some(earliest.map_or(back, |e: i64| e.min(back)));
    }
    earliest
}

/// The estimated finish time (epoch ms) of `requests_left` requests, or `None` when it
/// cannot be told: no usable token, or quota enough and no throughput seen yet.
/// `rate_per_sec` is the throughput while quota is available.
pub fn finish_at(
    requests_left: i64,
    tokens: &[Quota],
    rate_per_sec: Option<f64>,
    window_ms: i64,
    now: i64,
) -> Option<i64> {
    if requests_left <= 0 {
        return Some(now);
    }
    if tokens.is_empty() || window_ms <= 0 {
        return None;
    }
    let rate = rate_per_sec.filter(|r| *r > 0.0).map(|r| r / 1000.0); // per ms
                                                                      // Per token: quota usable now, the next time it refills, and from when it may send.
    struct State {
        quota: f64,
        limit: f64,
        next_reset: i64,
        from: i64,
    }
    let mut states: Vec<State> = tokens
        .iter()
        .map(|t| {
            let passed = t.reset_at.is_none_or(|r| r <= now);
            State {
                quota: if passed { t.limit } else { t.remaining.max(0) } as f64,
                limit: t.limit.max(0) as f64,
                // A window starts at the first request after a reset.
                next_reset: t.reset_at.filter(|r| *r > now).unwrap_or(now + window_ms),
                from: t.paused_until.unwrap_or(now).max(now),
            }
        })
        .collect();
    let mut need = requests_left as f64;
    let mut t = now;
    let mut waited = false;
    for _ in 0..100_000 {
        let next_event = states
            .iter()
            .flat_map(|s| [s.next_reset, s.from])
            .filter(|&e| e > t)
            .min()?;
        let available: f64 = states.iter().filter(|s| s.from <= t).map(|s| s.quota).sum();
        let can = match rate {
            Some(r) => available.min(r * (next_event - t) as f64),
            None => available,
        };
        if need <= can {
            return match rate {
                Some(r) => Some(t + (need / r).ceil() as i64),
                None if waited => Some(t),
                None => None,
            };
        }
        need -= can;
        // Spend the quota that refills soonest first.
        let mut spend = can;
        states.sort_by_key(|s| s.next_reset);
        for s in states.iter_mut().filter(|s| s.from <= t) {
            let used = spend.min(s.quota);
            s.quota -= used;
            spend -= used;
        }
        if available - can < 1.0 {
            waited = true;
        }
        t = next_event;
        for s in &mut states {
            if s.next_reset <= t {
                s.quota = s.limit;
                s.next_reset += window_ms;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn quota(remaining: i64, reset_in: i64) -> Quota {
        Quota {
            remaining,
            limit: 5000,
            reset_at: Some(NOW + reset_in),
            paused_until: None,
        }
    }

    #[test]
    fn enough_quota_means_the_rate_decides() {
        let at = finish_at(600, &[quota(5000, HOUR)], Some(10.0), HOUR, NOW);
        assert_eq!(at, Some(NOW + 60_000));
    }

    #[test]
    fn without_a_rate_enough_quota_cannot_be_timed() {
        assert_eq!(finish_at(600, &[quota(5000, HOUR)], None, HOUR, NOW), None);
    }

    #[test]
    fn spent_tokens_finish_after_their_resets() {
        // 7,000 requests, 1,000 left now, refills of 5,000 at +10 min and +70 min.
        let at = finish_at(7000, &[quota(1000, 600_000)], Some(1000.0), HOUR, NOW).unwrap();
        assert!(at > NOW + 600_000 + HOUR, "{}", at - NOW);
        assert!(at < NOW + 600_000 + HOUR + 10_000, "{}", at - NOW);
        // Without a known rate, the quota alone tells.
        let at = finish_at(7000, &[quota(1000, 600_000)], None, HOUR, NOW).unwrap();
        assert_eq!(at, NOW + 600_000 + HOUR);
    }

    #[test]
    fn two_tokens_finish_sooner_than_one() {
        let one = finish_at(20_000, &[quota(0, 60_000)], Some(100.0), HOUR, NOW).unwrap();
        let two = finish_at(
            20_000,
            &[quota(0, 60_000), quota(0, 120_000)],
            Some(100.0),
            HOUR,
            NOW,
        )
        .unwrap();
        assert!(two < one);
    }

    #[test]
    fn paused_until_is_the_first_token_back() {
        let tokens = [quota(0, 30_000), quota(0, 10_000)];
        assert_eq!(paused_until(&tokens, NOW), Some(NOW + 10_000));
        let tokens = [quota(0, 30_000), quota(5, 10_000)];
        assert_eq!(paused_until(&tokens, NOW), None);
        let paused = Quota {
            paused_until: Some(NOW + 5_000),
            ..quota(100, HOUR)
        };
        assert_eq!(paused_until(&[paused], NOW), Some(NOW + 5_000));
    }

    #[test]
    fn no_usable_token_gives_no_estimate() {
        assert_eq!(finish_at(10, &[], Some(1.0), HOUR, NOW), None);
    }
}
