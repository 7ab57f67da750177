//! Parsing of GitHub's rate-limit headers. Header names are matched case-insensitively
//! (by `http::HeaderMap`); values that are missing, negative or not numbers count as absent.

use reqwest::header::HeaderMap;
use std::time::Duration;

/// The longest any wait is allowed to be, whatever a header says: a window is one hour.
pub const MAX_WAIT: Duration = Duration::from_secs(3600 + 60);

/// A token's rate-limit buckets: GitHub counts REST requests and GraphQL points
/// separately, each with its own quota and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// REST requests (`x-ratelimit-resource: core`).
    Core,
    /// GraphQL points (`x-ratelimit-resource: graphql`).
    Graphql,
}

impl Bucket {
    /// The name in the database and in `x-ratelimit-resource`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Core => "core",
            Bucket::Graphql => "graphql",
        }
    }

    /// The bucket stored as `name`; anything else is REST's.
    pub fn from_name(name: &str) -> Bucket {
        if name == "graphql" {
            Bucket::Graphql
        } else {
            Bucket::Core
        }
    }
}

/// What `x-ratelimit-*` said about the token that sent the request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<i64>,
    pub remaining: Option<i64>,
    pub used: Option<i64>,
    /// End of the window, epoch seconds as sent.
    pub reset_epoch_secs: Option<i64>,
    pub resource: Option<String>,
}

impl RateLimit {
    pub fn from_headers(headers: &HeaderMap) -> Option<RateLimit> {
        let rate = RateLimit {
            limit: number(headers, "x-ratelimit-limit"),
            remaining: number(headers, "x-ratelimit-remaining"),
            used: number(headers, "x-ratelimit-used"),
            reset_epoch_secs: number(headers, "x-ratelimit-reset"),
            resource: text(headers, "x-ratelimit-resource"),
        };
        (rate != RateLimit::default()).then_some(rate)
    }

    /// The reset as epoch milliseconds, clamped to `[now, now + MAX_WAIT]` so that a
    /// reset in the past or far future cannot stall or spin the pool.
    pub fn reset_at_ms(&self, now_ms: i64) -> Option<i64> {
        let reset_ms = self.reset_epoch_secs?.saturating_mul(1000);
        Some(reset_ms.clamp(now_ms, now_ms.saturating_add(MAX_WAIT.as_millis() as i64)))
    }

    /// True when the headers say the token has no quota left in this window.
    pub fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }
}

fn text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)?
        .to_str()
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

fn number(headers: &HeaderMap, name: &str) -> Option<i64> {
    text(headers, name)?.parse::<i64>().ok().filter(|n| *n >= 0)
}

/// `retry-after`: delta seconds or an HTTP date; clamped to [`MAX_WAIT`].
pub fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = text(headers, "retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds).min(MAX_WAIT));
    }
    let when = chrono::DateTime::parse_from_rfc2822(&value).ok()?;
    let millis = (when.with_timezone(&chrono::Utc) - now)
        .num_milliseconds()
        .max(0);
    Some(Duration::from_millis(millis as u64).min(MAX_WAIT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use reqwest::header::{HeaderName, HeaderValue};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn header_names_match_case_insensitively() {
        let map = headers(&[
            ("X-RateLimit-Limit", "5000"),
            ("X-RATELIMIT-REMAINING", "0"),
            ("x-ratelimit-reset", "1700000000"),
        ]);
        let rate = RateLimit::from_headers(&map).unwrap();
        assert_eq!(rate.limit, Some(5000));
        assert!(rate.is_exhausted());
        assert_eq!(rate.reset_epoch_secs, Some(1_700_000_000));
    }

    #[test]
    fn garbage_values_count_as_absent_and_resets_are_clamped() {
        let map = headers(&[
            ("x-ratelimit-remaining", "-3"),
            ("x-ratelimit-reset", "soon"),
        ]);
        assert_eq!(RateLimit::from_headers(&map), None);
        let past = RateLimit {
            reset_epoch_secs: Some(5),
            ..RateLimit::default()
        };
        assert_eq!(past.reset_at_ms(1_000_000), Some(1_000_000));
        let far = RateLimit {
            reset_epoch_secs: Some(i64::MAX / 10),
            ..RateLimit::default()
        };
        assert_eq!(far.reset_at_ms(0), Some(MAX_WAIT.as_millis() as i64));
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2026 07:28:00 GMT")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "30")]), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after(
                &headers(&[("Retry-After", "Wed, 21 Oct 2026 07:28:45 GMT")]),
                now
            ),
            Some(Duration::from_secs(45))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "later")]), now),
            None
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics(remaining in ".*", reset in ".*", retry in ".*") {
            let mut map = HeaderMap::new();
            for (name, value) in [("x-ratelimit-remaining", &remaining), ("x-ratelimit-reset", &reset), ("retry-after", &retry)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    map.insert(name, value);
                }
            }
            if let Some(rate) = RateLimit::from_headers(&map) {
                let _ = rate.reset_at_ms(i64::MAX);
                let _ = rate.reset_at_ms(i64::MIN);
            }
            let _ = retry_after(&map, chrono::Utc::now());
        }

        #[test]
        fn a_reset_is_always_clamped_between_now_and_an_hour(reset in any::<i64>(), now in 0i64..4_000_000_000_000) {
            let rate = RateLimit { reset_epoch_secs: Some(reset), ..RateLimit::default() };
            let at = rate.reset_at_ms(now).unwrap();
            prop_assert!(at >= now && at <= now + MAX_WAIT.as_millis() as i64);
        }

        #[test]
        fn retry_after_never_exceeds_the_longest_wait(seconds in any::<u64>(), offset in -10_000_000i64..10_000_000) {
            let now = chrono::Utc::now();
            let wait = retry_after(&headers(&[("retry-after", &seconds.to_string())]), now).unwrap();
            prop_assert!(wait <= MAX_WAIT);
            prop_assert_eq!(wait, Duration::from_secs(seconds).min(MAX_WAIT));
            let date = (now + chrono::Duration::seconds(offset)).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
            let wait = retry_after(&headers(&[("retry-after", &date)]), now).unwrap();
            prop_assert!(wait <= MAX_WAIT);
            if offset <= 0 {
                prop_assert_eq!(wait, Duration::ZERO);
            } else {
                let expected = Duration::from_secs(offset as u64).min(MAX_WAIT);
                prop_assert!(wait + Duration::from_secs(1) >= expected && wait <= expected);
            }
        }

        #[test]
        fn numbers_that_are_negative_or_not_numbers_count_as_absent(value in "[ -~]{0,30}") {
            let map = headers(&[("x-ratelimit-remaining", &value)]);
            let parsed = RateLimit::from_headers(&map).and_then(|r| r.remaining);
            match value.trim().parse::<i64>() {
                Ok(n) if n >= 0 => prop_assert_eq!(parsed, Some(n)),
                _ => prop_assert_eq!(parsed, None),
            }
        }
    }
}
