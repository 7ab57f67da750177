//! What a failed request means for the job and for the token, decided once here.

use std::time::Duration;
use thiserror::Error;

/// A request that did not give a page. The worker acts on the variant, never on text.
#[derive(Debug, Error)]
pub enum FetchError {
    /// Primary quota used up (403/429 with `x-ratelimit-remaining: 0`): no request on
    /// this token before `reset_at_ms`. The job is snoozed, not charged an attempt.
    #[error("primary rate limit exhausted")]
    Exhausted { reset_at_ms: Option<i64> },
    /// Secondary limit ("You have exceeded a secondary rate limit", "abuse detection"):
    /// nothing on this token for `retry_after`. The job is snoozed.
    #[error("secondary rate limit: pause {retry_after:?}")]
    Secondary { retry_after: Duration },
    /// 401: the token is unusable; the other tokens carry on.
    #[error("bad credentials (401)")]
    BadCredentials,
    /// 404, or a 403 that is no rate limit: the page is not there, or this token may
    /// not see it (another token may).
    #[error("{0}")]
    Refused(String),
    /// 409, 410, 451 and other 4xx: retrying cannot help.
    #[error("{0}")]
    Fatal(String),
    /// 5xx, timeouts, dropped connections, unreadable bodies: retried with backoff.
    #[error("{0}")]
    Transient(String),
}

/// How long to pause a token hit by a secondary limit that did not say `retry-after`.
pub const SECONDARY_DEFAULT_PAUSE: Duration = Duration::from_secs(60);

/// Does this body say a secondary limit was hit?
pub fn mentions_secondary_limit(message: &str) -> bool {
    let lower = message.to_ascii_lowercase();
    lower.contains("secondary rate limit") || lower.contains("abuse detection")
}

/// Does this body say the primary limit was hit?
pub fn mentions_primary_limit(message: &str) -> bool {
    message.to_ascii_lowercase().contains("rate limit exceeded")
}

/// A short human message for a final HTTP status.
pub fn describe_status(status: u16) -> &'static str {
    match status {
        401 => "bad credentials",
        403 => "forbidden: the token lacks permission",
        404 => "not found, or the tokens cannot see it",
        409 => "conflict: the repository is empty",
        410 => "gone",
        422 => "unprocessable request",
        451 => "unavailable for legal reasons",
        _ => "request refused",
    }
}
