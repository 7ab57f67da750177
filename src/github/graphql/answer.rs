//! What a GraphQL answer says, decided once here: data (perhaps with errors about some
//! of its parts), a rate limit (GitHub's `RATE_LIMITED` comes with HTTP 200), a query
//! the server refuses to run, or something that is not GraphQL at all.
//!
//! An answer with both `data` and `errors` is never taken whole: an error with a
//! `path` concerns the aliases under it only, and an error without one concerns every
//! job of the query (none of them is stored as complete).

use crate::github::error::{mentions_primary_limit, mentions_secondary_limit};
use crate::github::RateLimit;
use serde::Deserialize;
use serde_json::Value;

/// One entry of `errors`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ErrorEntry {
    #[serde(default)]
    pub message: String,
    /// GitHub's `type`: NOT_FOUND, FORBIDDEN, RATE_LIMITED, MAX_NODE_LIMIT_EXCEEDED, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Where in `data` the error belongs: field names (aliases) and list indexes.
    pub path: Option<Vec<Value>>,
    pub extensions: Option<Value>,
}

impl ErrorEntry {
    /// `TYPE: message`, for a job's error.
    pub fn describe(&self) -> String {
        match &self.kind {
            Some(kind) => format!("{kind}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// The path's field names, e.g. `["repository", "pr12", "files"]`.
    fn fields(&self) -> Vec<&str> {
        self.path
            .iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect()
    }

    /// Whether retrying cannot help: the object is not there or not visible.
    pub fn is_final(&self) -> bool {
        matches!(self.kind.as_deref(), Some("NOT_FOUND" | "FORBIDDEN"))
    }
}

/// An answer that held `data`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The `data` object (`repository` and `rateLimit` under it).
    pub data: Value,
    pub errors: Vec<ErrorEntry>,
}

impl Answer {
    /// The `rateLimit` figures in the answer, as a [`RateLimit`] (`resetAt` turned into
    /// epoch seconds).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        let rate = self.data.get("rateLimit")?;
        let reset = rate
            .get("resetAt")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.timestamp());
        let number = |name: &str| rate.get(name).and_then(Value::as_i64).filter(|n| *n >= 0);
        Some(RateLimit {
            limit: number("limit"),
            remaining: number("remaining"),
            used: number("used"),
            reset_epoch_secs: reset,
            resource: Some("graphql".to_owned()),
        })
        .filter(|r| r.remaining.is_some())
    }

    /// The errors about `alias` under `repository` (an aliased PR or head commit), and
    /// those about the whole query or the repository, which concern every alias.
    pub fn errors_for(&self, alias: &str) -> Vec<&ErrorEntry> {
        self.errors
            .iter()
            .filter(|e| {
                let fields = e.fields();
                match fields.as_slice() {
                    [] | ["repository"] => true,
                    ["repository", name, ..] => *name == alias,
                    // `rateLimit` and other top-level fields carry no job's data.
                    _ => false,
                }
            })
            .collect()
    }

    /// `data.repository`, if the repository resolved.
    pub fn repository(&self) -> Option<&Value> {
        self.data.get("repository").filter(|r| !r.is_null())
    }
}

/// What a GraphQL answer with HTTP 200 means.
#[derive(Debug)]
pub enum Verdict {
    /// `data`, perhaps with errors about parts of it.
    Data(Answer),
    /// `RATE_LIMITED`: the token's GraphQL points are spent until the reset.
    RateLimited(String),
    /// A secondary rate limit (shared with REST).
    Secondary(String),
    /// The server would not run the query (unknown fields, limits): this server's
    /// GraphQL cannot serve seedq's queries.
    Rejected(String),
    /// No data, for another reason (a server error): worth another try.
    Failed(String),
    /// Not a GraphQL answer at all (no `data`, no `errors`).
    NotGraphql(String),
}

/// Reads a 200 answer's body.
pub fn read(bytes: &[u8]) -> Verdict {
    #[derive(Deserialize)]
    struct Body {
        data: Option<Value>,
        errors: Option<Vec<ErrorEntry>>,
    }
    let body: Body = match serde_json::from_slice::<Value>(bytes) {
        Ok(value @ Value::Object(_))
            if value.get("data").is_some() || value.get("errors").is_some() =>
        {
            match serde_json::from_value(value) {
                Ok(body) => body,
                Err(e) => return Verdict::NotGraphql(format!("unexpected GraphQL body: {e}")),
            }
        }
        _ => {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
            return Verdict::NotGraphql(format!(
                "the answer is not GraphQL (no data, no errors); it starts with {start:?}"
            ));
        }
    };
    let errors = body.errors.unwrap_or_default();
    let limited = |pick: fn(&ErrorEntry) -> bool| errors.iter().find(|e| pick(e));
    if let Some(e) = limited(|e| {
        matches!(e.kind.as_deref(), Some("RATE_LIMITED" | "RATE_LIMIT"))
            || mentions_primary_limit(&e.message)
            || e.message
                .to_ascii_lowercase()
                .contains("rate limit already exceeded")
    }) {
        return Verdict::RateLimited(e.describe());
    }
    if let Some(e) = limited(|e| mentions_secondary_limit(&e.message)) {
        return Verdict::Secondary(e.describe());
    }
    match body.data.filter(|d| d.is_object()) {
        Some(data) => Verdict::Data(Answer { data, errors }),
        None => {
            let described: Vec<String> = errors.iter().map(ErrorEntry::describe).collect();
            let message = if described.is_empty() {
                "a GraphQL answer with neither data nor errors".to_owned()
            } else {
                described.join("; ")
            };
            if errors.iter().any(is_rejection) {
                Verdict::Rejected(message)
            } else {
                Verdict::Failed(message)
            }
        }
    }
}

/// An error that refuses the query itself (checked before running it): the same query
/// would be refused again.
fn is_rejection(e: &ErrorEntry) -> bool {
    let by_type = matches!(
        e.kind.as_deref(),
        Some(
            "MAX_NODE_LIMIT_EXCEEDED"
                | "EXCESSIVE_PAGINATION"
                | "MISSING_PAGINATION_BOUNDARIES"
                | "INVALID_CURSOR_ARGUMENTS"
                | "PARSE"
        )
    );
    // GitHub's validation errors carry a `code` (undefinedField, argumentNotAccepted, …).
    let by_code = e.extensions.as_ref().and_then(|x| x.get("code")).is_some();
    by_type || by_code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limited_at_200_is_a_rate_limit_in_either_spelling() {
        for body in [
            r#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded for user ID 1."}]}"#,
            r#"{"errors":[{"type":"RATE_LIMIT","code":"graphql_rate_limit","message":"API rate limit already exceeded for user ID 1."}]}"#,
        ] {
            assert!(
                matches!(read(body.as_bytes()), Verdict::RateLimited(_)),
                "{body}"
            );
        }
    }

    #[test]
    fn errors_with_a_path_concern_their_alias_and_others_every_alias() {
        let body = br#"{"data":{"repository":{"pr1":null,"pr2":{}}},
            "errors":[{"type":"NOT_FOUND","path":["repository","pr1"],"message":"Could not resolve"}]}"#;
        let Verdict::Data(answer) = read(body) else {
            panic!("data expected")
        };
        assert_eq!(answer.errors_for("pr1").len(), 1);
        assert!(answer.errors_for("pr1")[0].is_final());
        assert!(answer.errors_for("pr2").is_empty());
        let body =
            br#"{"data":{"repository":{"pr2":{}}},"errors":[{"message":"Something went wrong"}]}"#;
        let Verdict::Data(answer) = read(body) else {
            panic!("data expected")
        };
        assert_eq!(answer.errors_for("pr2").len(), 1, "no path: every alias");
    }

    #[test]
    fn a_refused_query_an_empty_answer_and_html_are_told_apart() {
        let rejected = br#"{"errors":[{"path":["query","repository","pr1","bogus"],"extensions":{"code":"undefinedField"},"message":"Field 'bogus' doesn't exist on type 'PullRequest'"}]}"#;
        assert!(matches!(read(rejected), Verdict::Rejected(_)));
        let nodes = br#"{"errors":[{"type":"MAX_NODE_LIMIT_EXCEEDED","message":"too many"}]}"#;
        assert!(matches!(read(nodes), Verdict::Rejected(_)));
        let failed = br#"{"data":null,"errors":[{"message":"Something went wrong while executing your query."}]}"#;
        assert!(matches!(read(failed), Verdict::Failed(_)));
        assert!(matches!(read(b"<html>hi</html>"), Verdict::NotGraphql(_)));
        assert!(matches!(
            read(br#"{"message":"ok"}"#),
            Verdict::NotGraphql(_)
        ));
        assert!(matches!(read(br#"[1,2]"#), Verdict::NotGraphql(_)));
    }

    #[test]
    fn the_rate_limit_in_the_answer_is_read_with_its_reset() {
        let body = br#"{"data":{"rateLimit":{"limit":5000,"cost":1,"remaining":4321,"resetAt":"2026-12-01T07:00:00Z"},"repository":null}}"#;
        let Verdict::Data(answer) = read(body) else {
            panic!("data expected")
        };
        let rate = answer.rate_limit().unwrap();
        assert_eq!((rate.limit, rate.remaining), (Some(5000), Some(4321)));
        assert_eq!(rate.reset_epoch_secs, Some(1_796_108_400));
        assert!(answer.repository().is_none());
    }
}
