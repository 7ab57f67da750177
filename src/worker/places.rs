//! A worker's places in the tokens' lanes (`pool::lanes`): the place its request
//! holds, kept for the claim made with the request's completion; what answers teach
//! the lanes; and what a 401 means for a token (an App installation's is renewed).

use super::Context;
use crate::github::FetchError;
use crate::pool::lanes::{Answer, Api, Hold};
use crate::store::queue::TokenEvent;
use crate::store::workers::Beat;
use crate::store::{now_ms, ClaimFor, Work};
use crate::token::Token;
use std::cell::RefCell;

/// An installation whose token a 401 renewed this recently, refused again with the
/// new token, is disabled rather than renewed again.
const RENEWED_ON_401_WITHIN_MS: i64 = 60_000;

tokio::task_local! {
    /// The places this worker task holds in the tokens' lanes (`pool::lanes`): while a
    /// request is in flight, its token's, kept for the claim made with its completion.
    pub(super) static HOLD: RefCell<Option<Hold>>;
}

/// What an answer (or its failure) says of the token's concurrency.
pub(super) fn answer_of(error: Option<&FetchError>) -> Answer {
    match error {
        None => Answer::Taken,
        Some(FetchError::Secondary { retry_after }) => Answer::Secondary {
            pause_ms: retry_after.as_millis() as i64,
        },
        Some(FetchError::Transient(_)) => Answer::Neutral,
        Some(
            FetchError::Exhausted { .. }
            | FetchError::BadCredentials
            | FetchError::Refused(_)
            | FetchError::Fatal(_),
        ) => Answer::Taken,
    }
}

impl Context {
    /// A claim of this process's next work, choosing among the tokens `hold` holds a
    /// place on.
    pub(super) fn claim_for(&self, hold: &Hold) -> ClaimFor {
        ClaimFor::new(
            &self.store,
            &self.owner,
            self.pool.fingerprints_json(),
            self.apis(),
        )
        .choosing_from(self.pool.held_json(hold))
        .with_reserve(self.settings.reserve)
    }

    /// The claim to make with a completion (in its transaction): among the token this
    /// worker's request used and the tokens with a free place. `None` when stopping or
    /// when no place is free.
    pub(super) fn completion_claim(&self) -> Option<ClaimFor> {
        if self.stopping() {
            return None;
        }
        let hold = HOLD
            .try_with(|h| h.borrow_mut().take())
            .ok()
            .flatten()?
            .widen(now_ms())?;
        let claim = self.claim_for(&hold);
        let _ = HOLD.try_with(|h| *h.borrow_mut() = Some(hold));
        Some(claim)
    }

    /// After a claim: keeps the place of the token `work` was claimed on, and gives
    /// back the others (all of them when nothing was claimed).
    pub(super) fn claimed(&self, work: Option<&Work>) {
        let _ = HOLD.try_with(|h| {
            let mut h = h.borrow_mut();
            match (work, h.as_mut()) {
                (Some(work), Some(hold)) => self.keep(hold, work),
                _ => *h = None,
            }
        });
    }

    /// Keeps, of `hold`, the place of the token `work` goes to.
    pub(super) fn keep(&self, hold: &mut Hold, work: &Work) {
        let (token, api) = match work {
            Work::Rest(job) => (job.token.as_str(), Api::Rest),
            Work::Graphql(batch) => match batch.jobs.first() {
                Some(job) => (job.token.as_str(), Api::Graphql),
                None => return,
            },
        };
        let index = self.pool.index_of(token).unwrap_or(usize::MAX);
        hold.keep(index, api, now_ms());
    }

    /// What the heartbeat records: the reserve and each token's concurrency.
    pub(super) fn beat(&self) -> Beat {
        Beat {
            reserve: self.settings.reserve,
            concurrency: self
                .pool
                .concurrency()
                .into_iter()
                .map(|(fingerprint, n)| (fingerprint.to_owned(), n as i64))
                .collect(),
        }
    }

    /// What a 401 on `token` (a request sent with the secret `used`) means for it. An
    /// App installation's token may have expired or been revoked under the request: it
    /// is renewed at once and the request goes again (`Answered`). Any other token, or
    /// an installation whose token a 401 renewed less than a minute ago, is disabled
    /// (`Invalid`).
    pub(super) async fn bad_credentials(&self, token: &str, used: &str) -> TokenEvent {
        let label = self
            .pool
            .get(token)
            .map_or_else(|| token.to_owned(), |t| t.to_string());
        if let Some(apps) = &self.apps {
            let now = now_ms();
            let current = self.pool.get(token).map(Token::secret);
            let renewed_at = self
                .renewed_at
                .lock()
                .map(|r| r.get(token).copied())
                .unwrap_or(None);
            // Renewed since the request was sent (the secret `used` is gone): send again.
            if current.as_deref().is_some_and(|c| c != used) {
                return TokenEvent::Answered(None);
            }
            if renewed_at.is_none_or(|at| now - at > RENEWED_ON_401_WITHIN_MS) {
                match apps.renew_now(token, used).await {
                    Ok(true) => {
                        if let Ok(mut renewed) = self.renewed_at.lock() {
                            renewed.insert(token.to_owned(), now);
                        }
                        tracing::info!(token = %label, "{label}: 401 Bad credentials; renewed its token, the request goes again");
                        return TokenEvent::Answered(None);
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(token = %label, "{label}: 401 Bad credentials, and it could not be renewed ({e}): it is disabled; the others carry on");
                        return TokenEvent::Invalid;
                    }
                }
            }
        }
        tracing::error!(token = %label, "401 Bad credentials: this token is disabled; the others carry on");
        TokenEvent::Invalid
    }

    /// Teaches the token's lane what an answer said.
    pub(super) fn answered(&self, token: &str, answer: Answer, sent_at: i64) {
        let Some(index) = self.pool.index_of(token) else {
            return;
        };
        // The request's own place is the kept one of this worker's hold.
        let sent_with = HOLD
            .try_with(|h| h.borrow().as_ref().map(Hold::sent_with))
            .ok()
            .flatten()
            .unwrap_or(1);
        let lanes = self.pool.lanes();
        lanes.answered(index, answer, (sent_at, sent_with), now_ms());
    }
}

/// Waits until a token's lane has a free place (or a minute's count gives room), or
/// the process is stopping.
pub(super) async fn wait_for_room(ctx: &Context, now: i64) {
    tokio::select! {
        _ = ctx.pool.lanes().wait_for_room(now) => {}
        _ = ctx.shutdown.cancelled() => {}
        _ = ctx.stop.cancelled() => {}
    }
}
