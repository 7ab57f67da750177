//! The HTTP client: one GET with one token, classified into a page or a [`FetchError`].

use super::error::{
    describe_status, mentions_primary_limit, mentions_secondary_limit, FetchError,
    SECONDARY_DEFAULT_PAUSE,
};
use super::ratelimit::{retry_after, RateLimit};
use crate::token::Token;
use reqwest::header::{self, HeaderValue};
use reqwest::StatusCode;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use url::Url;

/// The largest body accepted for one page; GitHub's largest pages are a few MB.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The shortest wait after an exhausted answer whose `x-ratelimit-reset` is already past
/// (clocks disagree): long enough that a server that keeps refusing is not hammered.
pub const MIN_EXHAUSTED_WAIT_MS: i64 = 1_000;

/// Redirects followed per request (on the API's own origin only).
const MAX_REDIRECTS: usize = 5;

/// A successful answer.
#[derive(Debug)]
pub enum Body {
    /// 200: the page, its weak or strong ETag, and the next page's URL.
    Page {
        bytes: Vec<u8>,
        etag: Option<String>,
        next: Option<String>,
    },
    /// 304: what we stored is still current; no quota was spent.
    NotModified,
}

/// The result of one request together with the rate-limit headers, which every answer
/// carries, failures included: the token's state is reconciled from them either way.
#[derive(Debug)]
pub struct Fetched {
    pub rate: Option<RateLimit>,
    pub result: Result<Body, FetchError>,
}

/// A GitHub REST client bound to one API root.
#[derive(Clone)]
pub struct Client {
    pub(super) http: reqwest::Client,
    /// `https://api.github.com` or `https://HOST/api/v3`, without a trailing slash.
    api_root: String,
    /// Parsed root, to keep requests (and so the token) on its origin.
    api_origin: url::Origin,
    /// Repository paths whose redirect (a renamed repository) was already logged.
    redirects_noted: Arc<Mutex<HashSet<String>>>,
}

impl Client {
    pub fn new(api_root: &str, timeout: Duration) -> anyhow::Result<Client> {
        let api_origin = Url::parse(api_root)?.origin();
        // Redirects are followed on the API's origin only (a renamed repository answers
        // 301 to `/repositories/{id}/…`). A redirect elsewhere is not followed at all: the
        // 3xx comes back and fails the job, so no request (with or without the token)
        // goes to a host the user did not name.
        let same_origin = api_origin.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.url().origin() != same_origin {
                attempt.stop()
            } else if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        });
        let http = reqwest::Client::builder()
            .user_agent(concat!("seedq/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .redirect(policy)
            .build()?;
        Ok(Client {
            http,
            api_root: api_root.trim_end_matches('/').to_owned(),
            api_origin,
            redirects_noted: Arc::default(),
        })
    }

    pub fn api_root(&self) -> &str {
        &self.api_root
    }

    /// Resolves a job's URL: a path is put below the API root; an absolute URL (a
    /// `link` header's) is used as given, but only on the API's own origin, so that a
    /// hostile link cannot collect a token.
    pub fn resolve(&self, url: &str) -> Result<Url, FetchError> {
        let full = if url.starts_with('/') {
            format!("{}{}", self.api_root, url)
        } else {
            url.to_owned()
        };
        let parsed =
            Url::parse(&full).map_err(|e| FetchError::Fatal(format!("bad URL {full:?}: {e}")))?;
        if parsed.origin() != self.api_origin {
            return Err(FetchError::Fatal(format!(
                "refusing to send a token to {}: not the API host {}",
                parsed.origin().ascii_serialization(),
                self.api_origin.ascii_serialization()
            )));
        }
        Ok(parsed)
    }

    /// GETs `url` with `token`, sending `If-None-Match: etag` when given.
    pub async fn get(&self, url: &Url, token: &Token, etag: Option<&str>) -> Fetched {
        let Some(auth) = authorization(token) else {
            return Fetched {
                rate: None,
                result: Err(FetchError::BadCredentials),
            };
        };
        let mut request = self
            .http
            .get(url.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28");
        if let Some(etag) = etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => {
                return Fetched {
                    rate: None,
                    result: Err(FetchError::Transient(network_error("GET", url, &e))),
                }
            }
        };
        if response.url() != url {
            self.note_redirect(url, response.url());
        }
        let rate = RateLimit::from_headers(response.headers());
        let result = classify("GET", url, response, rate.as_ref()).await;
        Fetched { rate, result }
    }
}

/// `Authorization: Bearer …`, marked sensitive (kept out of debug output); `None` for
/// a token no header can carry (it cannot be valid either).
pub(super) fn authorization(token: &Token) -> Option<HeaderValue> {
    let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.secret())).ok()?;
    auth.set_sensitive(true);
    Some(auth)
}

impl Client {
    /// Logs (once per repository) that GitHub redirected a request: usually a renamed
    /// or transferred repository, whose data keeps the name the user typed.
    fn note_redirect(&self, from: &Url, to: &Url) {
        let key: String = from.path().split('/').take(4).collect::<Vec<_>>().join("/");
        let first = self
            .redirects_noted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        if first {
            tracing::info!(
                "GET {from} was redirected to {to}: {key} has moved (renamed or transferred?); \
                 following, and storing its data under the name given"
            );
        } else {
            tracing::debug!("GET {from} was redirected to {to}");
        }
    }
}

pub(super) fn network_error(method: &str, url: &Url, error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "connection dropped while reading the body"
    } else {
        "request failed"
    };
    // `without_url` keeps reqwest from repeating the URL; the cause chain says why.
    let mut cause = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        format!("{method} {url}: {what}")
    } else {
        format!("{method} {url}: {what}: {cause}")
    }
}

pub(super) async fn classify(
    method: &str,
    url: &Url,
    response: reqwest::Response,
    rate: Option<&RateLimit>,
) -> Result<Body, FetchError> {
    let status = response.status();
    let headers = response.headers().clone();
    if status == StatusCode::NOT_MODIFIED {
        return Ok(Body::NotModified);
    }
    let bytes = read_capped(method, url, response).await?;
    if status.is_success() {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        return Ok(Body::Page {
            bytes,
            etag: text(header::ETAG),
            next: text(header::LINK).and_then(|link| super::link::next_url(&link)),
        });
    }
    let message = error_message(&bytes);
    let code = status.as_u16();
    let now = chrono::Utc::now();
    let exhausted = rate.is_some_and(RateLimit::is_exhausted);
    match code {
        401 => Err(FetchError::BadCredentials),
        403 | 429 => {
            if mentions_secondary_limit(&message) {
                Err(FetchError::Secondary {
                    retry_after: retry_after(&headers, now).unwrap_or(SECONDARY_DEFAULT_PAUSE),
                })
            } else if exhausted || mentions_primary_limit(&message) {
                let now_ms = now.timestamp_millis();
                Err(FetchError::Exhausted {
                    reset_at_ms: rate
                        .and_then(|r| r.reset_at_ms(now_ms))
                        .map(|reset| reset.max(now_ms + MIN_EXHAUSTED_WAIT_MS)),
                })
            } else if code == 429 || retry_after(&headers, now).is_some() {
                Err(FetchError::Secondary {
                    retry_after: retry_after(&headers, now).unwrap_or(SECONDARY_DEFAULT_PAUSE),
                })
            } else if code == 403 {
                Err(FetchError::Refused(format!(
                    "HTTP {code} {}: {message}",
                    describe_status(code)
                )))
            } else {
                Err(FetchError::Fatal(format!(
                    "HTTP {code} {}: {message}",
                    describe_status(code)
                )))
            }
        }
        // Only redirects the policy refused come back: they leave the API's origin.
        300..=399 => {
            let location = headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("nowhere");
            Err(FetchError::Fatal(format!(
                "HTTP {code}: redirected to {location}, away from the API host {}; not followed \
                 (a token is only ever sent to the API host)",
                url.origin().ascii_serialization()
            )))
        }
        500..=599 => Err(FetchError::Transient(format!(
            "{method} {url}: HTTP {code} server error"
        ))),
        // 408 Request Timeout is worth another try.
        408 => Err(FetchError::Transient(format!("{method} {url}: HTTP 408"))),
        404 => Err(FetchError::Refused(format!(
            "HTTP {code} {}: {message}",
            describe_status(code)
        ))),
        _ => Err(FetchError::Fatal(format!(
            "HTTP {code} {}: {message}",
            describe_status(code)
        ))),
    }
}

/// Reads the body, refusing anything over [`MAX_BODY_BYTES`] (before reading it when
/// `content-length` says so). An oversized page is final: asking again gets the same.
pub(super) async fn read_capped(
    method: &str,
    url: &Url,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, FetchError> {
    let too_large = || {
        FetchError::Fatal(format!(
            "{method} {url}: response body larger than {} MiB; not a page seedq can store",
            MAX_BODY_BYTES / (1024 * 1024)
        ))
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => return Err(FetchError::Transient(network_error(method, url, &e))),
        }
    }
}

/// GitHub's `{"message": "…"}`, or the first line of whatever else came (an HTML page).
fn error_message(bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    if let Ok(ErrorBody { message: Some(m) }) = serde_json::from_slice(bytes) {
        return m;
    }
    let text = String::from_utf8_lossy(bytes);
    let first = text.lines().next().unwrap_or("").trim();
    first.chars().take(200).collect()
}

/// One bucket's quota as `GET /rate_limit` reports it (that call is free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct BucketQuota {
    pub limit: i64,
    pub remaining: i64,
    #[serde(rename = "reset")]
    pub reset_epoch_secs: i64,
}

impl BucketQuota {
    /// The same figures as an answer's rate-limit headers.
    pub fn rate(&self, bucket: super::Bucket) -> RateLimit {
        RateLimit {
            limit: Some(self.limit),
            remaining: Some(self.remaining),
            used: None,
            reset_epoch_secs: Some(self.reset_epoch_secs),
            resource: Some(bucket.as_str().to_owned()),
        }
    }
}

/// A token's buckets as `GET /rate_limit` reports them: REST's (`core`) and GraphQL's
/// (absent on a server without GraphQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct RateLimits {
    pub core: BucketQuota,
    pub graphql: Option<BucketQuota>,
}

impl Client {
    /// `GET /rate_limit`: the token's quotas, without spending any.
    pub async fn rate_limit(&self, token: &Token) -> Result<RateLimits, FetchError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            resources: RateLimits,
        }
        let url = self.resolve("/rate_limit")?;
        let fetched = self.get(&url, token, None).await;
        match fetched.result? {
            Body::Page { bytes, .. } => serde_json::from_slice::<Answer>(&bytes)
                .map(|answer| answer.resources)
                .map_err(|e| FetchError::Transient(format!("GET {url}: unexpected body: {e}"))),
            Body::NotModified => Err(FetchError::Transient(format!("GET {url}: unexpected 304"))),
        }
    }
}

impl Client {
    /// `GET /user`: the login of the account a token belongs to (one request of quota).
    pub async fn user(&self, token: &Token) -> Result<String, FetchError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            login: String,
        }
        let url = self.resolve("/user")?;
        let fetched = self.get(&url, token, None).await;
        match fetched.result? {
            Body::Page { bytes, .. } => serde_json::from_slice::<Answer>(&bytes)
                .map(|a| a.login)
                .map_err(|e| FetchError::Transient(format!("GET {url}: unexpected body: {e}"))),
            Body::NotModified => Err(FetchError::Transient(format!("GET {url}: unexpected 304"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Classifies a canned answer, as `get` would.
    fn classify_answer(
        status: u16,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<Body, FetchError> {
        let mut builder = hyper::Response::builder().status(status);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let response = reqwest::Response::from(builder.body(body.to_vec()).unwrap());
        let rate = RateLimit::from_headers(response.headers());
        let url = Url::parse("https://api.github.com/repos/a/b/pulls").unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(classify("GET", &url, response, rate.as_ref()))
    }

    fn header_pool() -> impl Strategy<Value = Vec<(String, String)>> {
        let name = prop_oneof![
            Just("x-ratelimit-remaining"),
            Just("x-ratelimit-reset"),
            Just("x-ratelimit-limit"),
            Just("retry-after"),
            Just("link"),
            Just("location"),
            Just("content-length"),
        ];
        let value = prop_oneof![
            "-?[0-9]{0,25}",
            "[ -~]{0,40}",
            Just("Wed, 21 Oct 2015 07:28:00 GMT".to_owned()),
        ];
        proptest::collection::vec((name.prop_map(str::to_owned), value), 0..6)
    }

    proptest! {
        #[test]
        fn any_answer_is_classified_without_panicking(
            status in 100u16..600,
            headers in header_pool(),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            // Header values http rejects would never reach classify.
            let headers: Vec<_> = headers
                .into_iter()
                .filter(|(_, v)| reqwest::header::HeaderValue::from_str(v).is_ok())
                .collect();
            // A wrong content-length is refused by http before classify sees it.
            let headers: Vec<_> = headers.into_iter().filter(|(n, _)| n != "content-length").collect();
            let _ = classify_answer(status, &headers, &body);
        }

        #[test]
        fn an_exhausted_answer_never_asks_for_a_wait_outside_one_second_to_an_hour(
            status in prop_oneof![Just(403u16), Just(429)],
            reset in any::<i64>(),
        ) {
            let headers = vec![
                ("x-ratelimit-remaining".to_owned(), "0".to_owned()),
                ("x-ratelimit-reset".to_owned(), reset.to_string()),
            ];
            let before = chrono::Utc::now().timestamp_millis();
            let result = classify_answer(status, &headers, br#"{"message": "API rate limit exceeded"}"#);
            let after = chrono::Utc::now().timestamp_millis();
            match result {
                Err(FetchError::Exhausted { reset_at_ms: Some(at) }) => {
                    prop_assert!(at >= before + MIN_EXHAUSTED_WAIT_MS);
                    prop_assert!(at <= after + super::super::ratelimit::MAX_WAIT.as_millis() as i64 + MIN_EXHAUSTED_WAIT_MS);
                }
                // A negative reset counts as absent: the worker's default wait applies.
                Err(FetchError::Exhausted { reset_at_ms: None }) => prop_assert!(reset < 0),
                other => prop_assert!(false, "{other:?}"),
            }
        }

        #[test]
        fn a_redirect_that_reaches_classify_is_final(status in prop_oneof![Just(301u16), Just(302), Just(303), Just(307), Just(308)], to in "[ -~]{0,60}") {
            let headers = vec![("location".to_owned(), to)];
            let result = classify_answer(status, &headers, b"");
            prop_assert!(matches!(&result, Err(FetchError::Fatal(m)) if m.contains("not followed")), "{result:?}");
        }
    }

    #[test]
    fn statuses_map_to_the_documented_outcomes() {
        let none: &[(String, String)] = &[];
        assert!(matches!(
            classify_answer(401, none, b"{}"),
            Err(FetchError::BadCredentials)
        ));
        for code in [500, 502, 503, 504, 408] {
            assert!(matches!(
                classify_answer(code, none, b"<html>"),
                Err(FetchError::Transient(_))
            ));
        }
        for code in [409, 410, 451, 422] {
            assert!(matches!(
                classify_answer(code, none, b"{}"),
                Err(FetchError::Fatal(_))
            ));
        }
        // What a token that cannot see a repository gets: another token may.
        assert!(matches!(
            classify_answer(404, none, br#"{"message": "Not Found"}"#),
            Err(FetchError::Refused(_))
        ));
        let permission = classify_answer(403, none, br#"{"message": "Resource not accessible"}"#);
        assert!(matches!(permission, Err(FetchError::Refused(_))));
        let secondary = classify_answer(
            403,
            &[("retry-after".to_owned(), "7".to_owned())],
            br#"{"message": "You have exceeded a secondary rate limit"}"#,
        );
        assert!(
            matches!(secondary, Err(FetchError::Secondary { retry_after }) if retry_after == Duration::from_secs(7))
        );
        assert!(matches!(
            classify_answer(200, none, b"[]"),
            Ok(Body::Page { .. })
        ));
        assert!(matches!(
            classify_answer(304, none, b""),
            Ok(Body::NotModified)
        ));
    }
}
