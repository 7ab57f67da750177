//! An account's rate-limit bucket: its REST requests (`core`) or its GraphQL points
//! (`graphql`), each shared by the account's tokens, with its own window that starts at
//! the first charge and lasts `FakeConfig::window` (GitHub: 5,000 requests, and 5,000
//! points, an hour for a personal token).

use serde_json::{json, Value};

/// One account's requests or points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// `core` or `graphql`: `x-ratelimit-resource`.
    pub resource: &'static str,
    /// Units per window.
    pub limit: u32,
    /// Units charged in the current window.
    pub used: u32,
    /// End of the current window (epoch ms), if one is running.
    pub window_end_ms: Option<u64>,
}

impl Bucket {
    /// A full bucket of `limit` units of `resource`.
    pub fn new(resource: &'static str, limit: u32) -> Bucket {
        Bucket {
            resource,
            limit,
            used: 0,
            window_end_ms: None,
        }
    }

    /// Ends an expired window.
    pub fn roll(&mut self, now_ms: u64) {
        if self.window_end_ms.is_some_and(|end| now_ms >= end) {
            self.window_end_ms = None;
            self.used = 0;
        }
    }

    /// Points left in the current window.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.used)
    }

    /// End of the current window, or of a window that would start now.
    pub fn reset_ms(&self, now_ms: u64, window_ms: u64) -> u64 {
        self.window_end_ms.unwrap_or(now_ms + window_ms)
    }

    /// Charges `points`, starting a window if none is running.
    pub fn charge(&mut self, points: u32, now_ms: u64, window_ms: u64) {
        if points == 0 {
            return;
        }
        if self.window_end_ms.is_none() {
            self.window_end_ms = Some(now_ms + window_ms);
        }
        self.used = self.used.saturating_add(points);
    }

    /// The `x-ratelimit-*` headers. `x-ratelimit-reset` is rounded up to the next second
    /// so a client that waits for it never comes back early; `x-ratelimit-reset-ms` is
    /// exact.
    pub fn headers(&self, now_ms: u64, window_ms: u64) -> Vec<(&'static str, String)> {
        let reset_ms = self.reset_ms(now_ms, window_ms);
        vec![
            ("x-ratelimit-limit", self.limit.to_string()),
            ("x-ratelimit-remaining", self.remaining().to_string()),
            ("x-ratelimit-used", self.used.to_string()),
            ("x-ratelimit-reset", reset_ms.div_ceil(1000).to_string()),
            ("x-ratelimit-reset-ms", reset_ms.to_string()),
            ("x-ratelimit-resource", self.resource.to_string()),
        ]
    }

    /// The bucket's entry in `GET /rate_limit`'s `resources`.
    pub fn json(&self, now_ms: u64, window_ms: u64) -> Value {
        json!({
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining(),
            "reset": self.reset_ms(now_ms, window_ms).div_ceil(1000),
            "resource": self.resource,
        })
    }
}
