//! Selective seeding: `enqueue --since/--state/--limit/--with` fetch only what was
//! asked, the settings stay with the repository for its refreshes, and bad values are
//! refused with exit 2 before anything is written.

mod support;

use predicates::str::contains;
use support::fake_github::{FakeConfig, FakeGithub, PrTruth, RepoSpec};
use support::harness::{token, Harness};

const REPO: &str = "acme/widgets";

fn fake(prs: u32) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new(REPO, prs)],
        ..FakeConfig::default()
    })
}

fn seed_with(h: &Harness, options: &[&str]) {
    let mut args = vec!["enqueue", REPO];
    args.extend_from_slice(options);
    h.seedq().args(&args).assert().success();
    h.seedq()
        .args(["work", "--workers", "4"])
        .assert()
        .success();
}

fn numbers(h: &Harness) -> Vec<u64> {
    let mut numbers: Vec<u64> = h
        .texts("SELECT CAST(number AS TEXT) FROM pull_requests")
        .into_iter()
        .map(|n| n.unwrap().parse().unwrap())
        .collect();
    numbers.sort();
    numbers
}

fn list_requests(fake: &FakeGithub) -> usize {
    fake.requests_log()
        .iter()
        .filter(|r| r.path.contains("/pulls?"))
        .count()
}

#[test]
fn since_stops_paging_past_the_date() {
    let fake = fake(250);
    let h = Harness::new(&fake.url(), &[token(1)]);
    let mut by_update: Vec<PrTruth> = fake.truth(REPO).per_pr;
    by_update.sort_by(|a, b| b.updated_at.cmp(&a.updated_at));
    // The 150 most recently updated PRs: two list pages of three.
    let since = by_update[149].updated_at.clone();
    seed_with(&h, &["--since", &since]);

    let mut expected: Vec<u64> = by_update[..150].iter().map(|p| p.number).collect();
    expected.sort();
    assert_eq!(numbers(&h), expected);
    assert_eq!(
        list_requests(&fake),
        2,
        "the third list page is past the date"
    );
    let fetched_details = h.count("SELECT count(*) FROM jobs WHERE kind = 'pull'");
    assert_eq!(fetched_details, 150, "no PR older than the date is fetched");
}

#[test]
fn state_open_seeds_only_open_prs() {
    let fake = fake(60);
    let h = Harness::new(&fake.url(), &[token(1)]);
    seed_with(&h, &["--state", "open"]);
    let open: Vec<u64> = fake
        .truth(REPO)
        .per_pr
        .iter()
        .filter(|p| p.state == "open")
        .map(|p| p.number)
        .collect();
    assert!(!open.is_empty());
    assert_eq!(numbers(&h), open);
}

#[test]
fn limit_keeps_the_n_most_recent_prs() {
    let fake = fake(230);
    let h = Harness::new(&fake.url(), &[token(1)]);
    seed_with(&h, &["--limit", "5"]);
    assert_eq!(numbers(&h), [226, 227, 228, 229, 230]);
    assert_eq!(list_requests(&fake), 1);
    assert!(fake
        .requests_log()
        .iter()
        .any(|r| r.path.contains("/pulls?") && r.path.contains("per_page=5")));
}

#[test]
fn with_review_and_issue_comments_fills_their_views() {
    let fake = fake(20);
    let h = Harness::new(&fake.url(), &[token(1)]);
    seed_with(&h, &["--with", "pull,review_comments,issue_comments"]);
    let truth = fake.truth(REPO);
    assert!(truth.review_comments > 0 && truth.issue_comments > 0);
    assert_eq!(
        h.count("SELECT count(*) FROM pr_review_comments") as u64,
        truth.review_comments
    );
    assert_eq!(
        h.count("SELECT count(*) FROM pr_issue_comments") as u64,
        truth.issue_comments
    );
    assert_eq!(h.count("SELECT count(*) FROM pr_commits"), 0);
    assert_eq!(h.count("SELECT count(*) FROM pr_files"), 0);
    for pr in &truth.per_pr {
        let n = pr.number;
        let of = |view: &str| {
            h.count(&format!(
                "SELECT count(*) FROM {view} WHERE pr_number = {n}"
            )) as u64
        };
        assert_eq!(of("pr_review_comments"), pr.review_comments, "#{n}");
        assert_eq!(of("pr_issue_comments"), pr.issue_comments, "#{n}");
    }
}

#[test]
fn a_refresh_keeps_the_options_of_the_seed() {
    let fake = fake(60);
    let h = Harness::new(&fake.url(), &[token(1)]);
    seed_with(&h, &["--state", "open", "--with", "pull,reviews"]);
    let truth = fake.truth(REPO);
    let open = truth.per_pr.iter().find(|p| p.state == "open").unwrap();
    let closed = truth.per_pr.iter().find(|p| p.state == "closed").unwrap();
    fake.touch_pr(REPO, open.number);
    fake.touch_pr(REPO, closed.number);
    h.seedq()
        .args(["enqueue", REPO])
        .assert()
        .success()
        .stdout(contains("PRs updated since"));
    h.seedq().arg("work").assert().success();
    assert!(!numbers(&h).contains(&closed.number));
    assert_eq!(h.count("SELECT count(*) FROM pr_commits"), 0);
    let reviews = h.count(&format!(
        "SELECT count(*) FROM pr_reviews WHERE pr_number = {}",
        open.number
    ));
    assert_eq!(reviews as u64, open.reviews + 1, "the touch added a review");
}

#[test]
fn bad_enqueue_options_exit_2_and_write_nothing() {
    let h = Harness::new("http://127.0.0.1:9", &[token(1)]);
    for (args, message) in [
        (&["--since", "last week"][..], "not a date"),
        (&["--since", "2999-01-01"], "in the future"),
        (&["--since", "2024-02-30"], "not a date"),
        (&["--state", "merged"], "invalid value"),
        (&["--limit", "0"], "invalid value"),
        (&["--limit=-3"], "invalid value"),
        (&["--with", "commits,bogus"], "unknown endpoint"),
        (&["--with", "pulls"], "always fetched"),
    ] {
        h.seedq()
            .args(["enqueue", REPO])
            .args(args)
            .assert()
            .code(2)
            .stderr(contains(message));
    }
    assert!(!h.db_exists(), "no database was created");
}

#[test]
fn a_pr_that_left_the_selected_state_is_updated_on_refresh() {
    let fake = fake(60);
    let h = Harness::new(&fake.url(), &[token(1)]);
    seed_with(&h, &["--state", "open"]);
    // A PR that was open at the seed and has been closed since (the fake cannot close
    // one, so the seed's row is written by hand).
    let closed = fake
        .truth(REPO)
        .per_pr
        .into_iter()
        .find(|p| p.state == "closed")
        .unwrap();
    let n = closed.number;
    h.execute(&format!(
        "INSERT INTO gh_pulls (repo, number, title, state, updated_at)
             VALUES ('{REPO}', {n}, 'old title', 'open', '2018-01-01T00:00:00Z')"
    ));
    fake.touch_pr(REPO, n);
    h.enqueue(REPO);
    h.seedq().arg("work").assert().success();
    let row = h.texts(&format!(
        "SELECT state || '|' || title FROM pull_requests WHERE number = {n}"
    ));
    let title = &fake.truth(REPO).per_pr[n as usize - 1].title;
    assert_eq!(row, vec![Some(format!("closed|{title}"))]);
    assert_eq!(
        h.count(&format!("SELECT count(*) FROM jobs WHERE pr_number = {n}")),
        0,
        "a PR outside the selection is not fetched"
    );
}
