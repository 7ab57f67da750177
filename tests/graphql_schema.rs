//! Every query text seedq can send is valid against GitHub's public GraphQL schema:
//! the list page in each of its forms, and batches holding every kind of page, first
//! and later ones. The schema is octokit's copy of GitHub's, read from
//! `../shared/github/schema.graphql` beside the project (never copied into it); where it
//! is absent these tests say so in one line and pass.

use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use seedq::github::graphql::query::{self, ListAsk, PageAsk};
use seedq::github::graphql::{cost, MAX_NODES, MAX_REQUESTS_PER_QUERY};
use seedq::github::Kind;
use std::path::PathBuf;

fn schema_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/github/schema.graphql")
}

/// GitHub's schema, or `None` (with one line saying so) where the file is absent.
fn schema() -> Option<Valid<Schema>> {
    let path = schema_path();
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "skipped: GitHub's GraphQL schema is not at {} (it sits beside the project on its \
             machines and in CI)",
            path.display()
        );
        return None;
    };
    // octokit's copy defines two fields twice; the rest of it is what validation needs.
    Some(match Schema::parse_and_validate(text, "schema.graphql") {
        Ok(schema) => schema,
        Err(invalid) => Valid::assume_valid(invalid.partial),
    })
}

fn assert_valid(schema: &Valid<Schema>, text: &str) {
    if let Err(errors) = ExecutableDocument::parse_and_validate(schema, text, "query.graphql") {
        panic!(
            "invalid against GitHub's schema:\n{text}\n{}",
            errors.errors
        );
    }
}

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

fn ask(kind: Kind, pr: i64, page: i64) -> PageAsk {
    PageAsk {
        kind,
        pr,
        page,
        cursor: (page > 1).then(|| "Y3Vyc29yOnYyOpHOAAA=".to_owned()),
        head_sha: Some(SHA.to_owned()),
    }
}

/// Every per-PR kind GraphQL serves.
const KINDS: [Kind; 6] = [
    Kind::Pull,
    Kind::Commits,
    Kind::Reviews,
    Kind::Files,
    Kind::CheckRuns,
    Kind::IssueComments,
];

#[test]
fn every_list_query_is_valid_against_githubs_schema() {
    let Some(schema) = schema() else { return };
    for state in ["all", "open", "closed"] {
        for sort in ["created", "updated"] {
            for after in [None, Some("Y3Vyc29y".to_owned())] {
                let url = format!(
                    "/repos/o/r/pulls?state={state}&sort={sort}&direction=desc&per_page=100"
                );
                let list = ListAsk::from_rest_url(&url, after).unwrap();
                assert_valid(&schema, &query::list("o", "r", &list).text);
            }
        }
    }
}

#[test]
fn every_batch_query_is_valid_against_githubs_schema() {
    let Some(schema) = schema() else { return };
    // Each kind alone, first and later pages.
    for kind in KINDS {
        for page in [1, 2, 3] {
            assert_valid(&schema, &query::batch("o", "r", &[ask(kind, 7, page)]).text);
        }
    }
    // Every kind of many PRs in one query, first pages and cursors mixed.
    let mut asks = Vec::new();
    for pr in 1..=20 {
        for kind in KINDS {
            asks.push(ask(kind, pr, 1 + pr % 3));
        }
    }
    let batch = query::batch("o", "r", &asks);
    assert_valid(&schema, &batch.text);
    assert!(batch.text.matches("after: $a").count() > 20);
}

#[test]
fn queries_stay_within_githubs_limits_by_construction() {
    // The biggest batch a claim makes: as many connections as one point buys.
    let asks: Vec<PageAsk> = (1..=MAX_REQUESTS_PER_QUERY)
        .map(|pr| ask(Kind::Files, pr, 1))
        .collect();
    let batch = query::batch("o", "r", &asks);
    assert_eq!(batch.requests, MAX_REQUESTS_PER_QUERY);
    assert_eq!(cost(batch.requests), 1);
    assert!(batch.nodes <= MAX_NODES);
    for text in [&batch.text] {
        for first in text.split("first: ").skip(1) {
            let n: i64 = first
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=100).contains(&n), "first: {n}");
        }
    }
}
