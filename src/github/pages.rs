//! Decoding a page body into rows. Only identity fields (numbers, SHAs, ids) are
//! required; anything else that is missing or null becomes NULL in the database.
//! A body that is not the expected JSON is an error for the job, never a panic.

use super::kinds::Kind;
use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct User {
    pub login: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GitRef {
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub name: Option<String>,
}

/// A pull request, from the list (without line counts) or the detail (with them).
#[derive(Debug, Deserialize)]
pub struct PullRow {
    pub number: i64,
    pub title: Option<String>,
    pub state: Option<String>,
    pub user: Option<User>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub closed_at: Option<String>,
    pub merged_at: Option<String>,
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changed_files: Option<i64>,
    pub draft: Option<bool>,
    pub head: Option<GitRef>,
    pub base: Option<GitRef>,
}

impl PullRow {
    pub fn head_sha(&self) -> Option<&str> {
        self.head.as_ref()?.sha.as_deref()
    }
}

#[derive(Debug, Deserialize)]
pub struct CommitRow {
    pub sha: String,
    pub commit: Option<CommitDetail>,
    pub author: Option<User>,
}

#[derive(Debug, Deserialize)]
pub struct CommitDetail {
    pub message: Option<String>,
    pub author: Option<GitAuthor>,
}

#[derive(Debug, Deserialize)]
pub struct GitAuthor {
    pub name: Option<String>,
    pub date: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReviewRow {
    pub id: i64,
    pub user: Option<User>,
    pub state: Option<String>,
    pub submitted_at: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct FileRow {
    pub filename: String,
    pub status: Option<String>,
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changes: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct CheckRunRow {
    pub id: i64,
    pub name: Option<String>,
    pub head_sha: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CheckRunsPage {
    check_runs: Vec<CheckRunRow>,
}

#[derive(Debug, Deserialize)]
pub struct CommentRow {
    pub id: i64,
    pub user: Option<User>,
    pub created_at: Option<String>,
    pub body: Option<String>,
}

/// The rows of one page.
#[derive(Debug)]
pub enum Rows {
    Pulls(Vec<PullRow>),
    Pull(Box<PullRow>),
    Commits(Vec<CommitRow>),
    Reviews(Vec<ReviewRow>),
    Files(Vec<FileRow>),
    CheckRuns(Vec<CheckRunRow>),
    ReviewComments(Vec<CommentRow>),
    IssueComments(Vec<CommentRow>),
}

impl Rows {
    /// How many items the page held (a detail counts as one).
    pub fn len(&self) -> usize {
        match self {
            Rows::Pulls(v) => v.len(),
            Rows::Pull(_) => 1,
            Rows::Commits(v) => v.len(),
            Rows::Reviews(v) => v.len(),
            Rows::Files(v) => v.len(),
            Rows::CheckRuns(v) => v.len(),
            Rows::ReviewComments(v) | Rows::IssueComments(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Decodes `bytes` as a page of `kind`.
pub fn parse(kind: Kind, bytes: &[u8]) -> Result<Rows, String> {
    fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
        serde_json::from_slice(bytes).map_err(|e| {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned();
            format!("unexpected response body ({e}); it starts with {start:?}")
        })
    }
    Ok(match kind {
        Kind::Pulls => Rows::Pulls(decode(bytes)?),
        Kind::Pull => Rows::Pull(Box::new(decode(bytes)?)),
        Kind::Commits => Rows::Commits(decode(bytes)?),
        Kind::Reviews => Rows::Reviews(decode(bytes)?),
        Kind::Files => Rows::Files(decode(bytes)?),
        Kind::CheckRuns => Rows::CheckRuns(decode::<CheckRunsPage>(bytes)?.check_runs),
        Kind::ReviewComments => Rows::ReviewComments(decode(bytes)?),
        Kind::IssueComments => Rows::IssueComments(decode(bytes)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn deleted_authors_are_null_not_errors() {
        let body = br#"[{"number": 5, "title": "t", "user": null, "head": {"sha": "abc"}}]"#;
        let Rows::Pulls(pulls) = parse(Kind::Pulls, body).unwrap() else {
            panic!("not pulls")
        };
        assert!(pulls[0].user.is_none());
        assert_eq!(pulls[0].head_sha(), Some("abc"));
    }

    #[test]
    fn check_runs_are_unwrapped() {
        let body = br#"{"total_count": 1, "check_runs": [{"id": 9, "name": "ci", "status": "completed", "conclusion": "success"}]}"#;
        assert_eq!(parse(Kind::CheckRuns, body).unwrap().len(), 1);
    }

    #[test]
    fn wrong_shapes_are_errors() {
        assert!(parse(Kind::Pulls, b"<html>502</html>").is_err());
        assert!(parse(Kind::Pulls, br#"[{"number": "five"}]"#).is_err());
        assert!(parse(Kind::Commits, br#"[{"sha": 1}]"#).is_err());
        assert!(parse(Kind::Files, br#"[{"filename": "a""#).is_err());
        assert!(parse(Kind::CheckRuns, br#"[]"#).is_err());
    }

    /// Any JSON value, nested a few levels.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ -~]{0,10}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            let keys = prop_oneof![
                Just("number".to_owned()),
                Just("id".to_owned()),
                Just("sha".to_owned()),
                Just("filename".to_owned()),
                Just("user".to_owned()),
                Just("head".to_owned()),
                Just("check_runs".to_owned()),
                Just("title".to_owned()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_json_is_rows_or_an_error_never_a_panic(value in json()) {
            let bytes = serde_json::to_vec(&value).unwrap();
            for kind in [Kind::Pulls].into_iter().chain(Kind::ALL_PER_PR) {
                if let Ok(rows) = parse(kind, &bytes) {
                    // Rows come only from an array, the check-runs wrapper (an object,
                    // or serde's sequence form of it) or a detail.
                    let items = match (kind, &value) {
                        (Kind::Pull, _) => 1,
                        (Kind::CheckRuns, serde_json::Value::Array(a)) => {
                            a[0].as_array().map_or(0, Vec::len)
                        }
                        (Kind::CheckRuns, _) => value["check_runs"].as_array().map_or(0, Vec::len),
                        (_, serde_json::Value::Array(a)) => a.len(),
                        _ => usize::MAX,
                    };
                    prop_assert_eq!(rows.len(), items);
                }
            }
        }

        #[test]
        fn a_page_of_n_files_with_extra_fields_gives_n_rows(names in proptest::collection::vec("[a-z/.]{1,20}", 0..50), extra in "[a-z]{1,8}") {
            let items: Vec<serde_json::Value> = names
                .iter()
                .map(|n| serde_json::json!({"filename": n, extra.clone(): [1, {"x": null}], "additions": 3}))
                .collect();
            let rows = parse(Kind::Files, &serde_json::to_vec(&items).unwrap()).unwrap();
            prop_assert_eq!(rows.len(), names.len());
        }

        #[test]
        fn never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            for kind in [Kind::Pulls].into_iter().chain(Kind::ALL_PER_PR) {
                let _ = parse(kind, &body);
            }
        }
    }
}
