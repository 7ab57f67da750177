//! Many repositories: list files, the order repositories complete in and `--priority`,
//! tokens that see different repositories, exit 3 when jobs failed, and `remove`.

mod support;

use predicates::str::contains;
use std::collections::HashMap;
use std::io::Write;
use support::fake_github::{FakeConfig, FakeGithub, RepoSpec};
use support::harness::{token, Harness};

fn serving(repos: Vec<RepoSpec>) -> FakeGithub {
    FakeGithub::spawn(FakeConfig {
        repos,
        ..FakeConfig::default()
    })
}

/// The repositories `status --json` lists, in its order.
fn status_repos(h: &Harness) -> Vec<String> {
    let out = h.seedq().args(["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repo"].as_str().unwrap().to_owned())
        .collect()
}

/// The repository of an API path (`/repos/OWNER/NAME/...`), if it names one.
fn repo_of(path: &str) -> Option<String> {
    let mut parts = path.split('?').next()?.split('/').skip(1);
    (parts.next()? == "repos").then_some(())?;
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

#[test]
fn a_list_file_is_enqueued_in_its_order_and_a_bad_line_writes_nothing() {
    let fake = serving(vec![]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "acme/one\n# fine so far\nnot-a-repo\nacme/two\n").unwrap();
    h.seedq()
        .args(["enqueue", "--from-file", bad.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("line 3"))
        .stderr(contains("not-a-repo"));
    assert!(!h.db_exists(), "nothing written");

    let list = dir.path().join("repos.txt");
    std::fs::write(
        &list,
        "# tonight\nzeta/last-alphabetically\n\n  acme/widgets   # the big one\r\nacme/widgets\nbeta/x\n",
    )
    .unwrap();
    h.seedq()
        .args(["enqueue", "--from-file", list.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("queued zeta/last-alphabetically"))
        .stdout(contains("queued beta/x"));
    // Standard input, after the file's repositories: and each repository once.
    let mut child = h
        .command()
        .args(["enqueue", "--from-file", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"gamma/y\nacme/widgets\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("queued gamma/y"), "{said}");
    assert!(said.contains("acme/widgets is already queued"), "{said}");
    assert_eq!(
        status_repos(&h),
        [
            "zeta/last-alphabetically",
            "acme/widgets",
            "beta/x",
            "gamma/y"
        ],
        "status lists repositories in queue order"
    );
}

#[test]
fn repositories_complete_one_after_another_and_priority_goes_first() {
    let fake = serving(vec![
        RepoSpec::new("acme/first", 6),
        RepoSpec::new("acme/second", 6),
        RepoSpec::new("acme/urgent", 6),
    ]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/first");
    h.enqueue("acme/second");
    h.seedq()
        .args(["enqueue", "acme/urgent", "--priority", "5"])
        .assert()
        .success();
    assert_eq!(
        status_repos(&h),
        ["acme/urgent", "acme/first", "acme/second"]
    );
    h.seedq()
        .args(["work", "--workers", "1"])
        .assert()
        .success();
    h.assert_all_done();
    // One worker: every request of a repository before any of the next one's.
    let mut order: Vec<String> = Vec::new();
    for record in fake.requests_log() {
        if let Some(repo) = repo_of(&record.path) {
            if order.last() != Some(&repo) {
                order.push(repo);
            }
        }
    }
    assert_eq!(order, ["acme/urgent", "acme/first", "acme/second"]);
}

#[test]
fn priority_given_again_moves_a_queued_repository_ahead() {
    let fake = serving(vec![RepoSpec::new("acme/a", 3), RepoSpec::new("acme/b", 3)]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/a");
    h.enqueue("acme/b");
    h.seedq()
        .args(["enqueue", "acme/b", "--priority", "1"])
        .assert()
        .success()
        .stdout(contains("already queued"));
    assert_eq!(status_repos(&h), ["acme/b", "acme/a"]);
    h.seedq()
        .args(["work", "--workers", "1"])
        .assert()
        .success();
    let first = fake
        .requests_log()
        .iter()
        .find_map(|r| repo_of(&r.path))
        .unwrap();
    assert_eq!(first, "acme/b");
    for bad in ["many", "99999999999"] {
        h.seedq()
            .args(["enqueue", "acme/a", "--priority", bad])
            .assert()
            .code(2);
    }
}

#[test]
fn a_repository_one_token_of_three_can_see_is_fetched_with_that_token() {
    let tokens: Vec<String> = (1..=3).map(token).collect();
    let fake = serving(vec![
        RepoSpec::new("acme/private", 12).hidden_from(&tokens[..2]),
        RepoSpec::new("acme/public", 4),
    ]);
    for api in ["rest", "auto"] {
        let before = fake.requests_log().len();
        let h = Harness::new(&fake.url(), &tokens).api(api);
        h.enqueue("acme/private");
        h.enqueue("acme/public");
        h.seedq()
            .args(["work", "--workers", "4"])
            .assert()
            .success();
        h.assert_complete(&fake, "acme/private");
        h.assert_complete(&fake, "acme/public");
        assert_eq!(
            h.count("SELECT count(*) FROM repo_access WHERE repo = 'acme/private' AND sees = 0"),
            2,
            "{api}: both blind tokens are recorded"
        );
        // The blind tokens were refused a few times at most (requests in flight when
        // the first refusal came back), not once per job.
        let log = fake.requests_log();
        let mut refused: HashMap<String, usize> = HashMap::new();
        for r in &log[before..] {
            if r.status == 404 {
                *refused
                    .entry(r.token.clone().unwrap_or_default())
                    .or_default() += 1;
            }
        }
        assert!(!refused.contains_key(&tokens[2]), "{api}: {refused:?}");
        assert!(
            refused.values().all(|&n| n <= 4),
            "{api}: {refused:?} refusals per blind token"
        );
        let status = h.seedq().arg("status").output().unwrap();
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.contains("not by"), "{text}");
        assert!(!text.contains(&tokens[0]), "tokens are masked: {text}");
    }
}

#[test]
fn a_repository_no_token_can_see_fails_at_once_and_work_exits_3() {
    let tokens: Vec<String> = (1..=2).map(token).collect();
    let fake = serving(vec![
        RepoSpec::new("acme/secret", 30).hidden_from(&tokens),
        RepoSpec::new("acme/public", 5),
    ]);
    let h = Harness::new(&fake.url(), &tokens);
    h.enqueue("acme/secret");
    h.enqueue("acme/public");
    h.seedq()
        .args(["work", "--workers", "2"])
        .assert()
        .code(3)
        .stderr(contains("no token can see it"))
        .stderr(contains("acme/secret 1"));
    h.assert_complete(&fake, "acme/public");
    let out = h.seedq().args(["status", "--json"]).output().unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = doc["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == "acme/secret")
        .unwrap()
        .clone();
    assert_eq!(secret["access"]["no_token"], true, "{secret}");
    assert_eq!(secret["jobs"]["failed"], 1);
    let text = h.seedq().arg("status").output().unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).contains("no token can see it"));
    // A retry gives every token another chance (access may have been granted).
    h.seedq()
        .args(["retry", "--repo", "acme/secret"])
        .assert()
        .success();
    assert_eq!(
        h.count("SELECT count(*) FROM repo_access WHERE sees = 0"),
        0
    );
}

#[test]
fn work_exits_3_when_a_job_failed_and_0_once_retried_jobs_succeed() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![
            RepoSpec::new("acme/widgets", 4),
            RepoSpec::new("acme/gone", 2),
        ],
        repo_errors: HashMap::from([("acme/gone".to_owned(), 451)]),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.enqueue("acme/widgets");
    h.enqueue("acme/gone");
    h.seedq()
        .arg("work")
        .assert()
        .code(3)
        .stderr(contains("1 job(s) failed (acme/gone 1)"));
    h.assert_complete(&fake, "acme/widgets");
    // Nothing left to do but the failed job: still 3, not 0.
    h.seedq().arg("work").assert().code(3);
    h.seedq()
        .args(["remove", "acme/gone"])
        .assert()
        .success()
        .stdout(contains("removed acme/gone: 1 jobs and 0 rows"));
    h.seedq().arg("work").assert().success();
}

#[test]
fn remove_drops_repositories_and_keep_data_keeps_their_rows() {
    let fake = serving(vec![
        RepoSpec::new("acme/a", 5),
        RepoSpec::new("acme/b", 5),
        RepoSpec::new("acme/c", 5),
    ]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    for repo in ["acme/a", "acme/b", "acme/c"] {
        h.enqueue(repo);
    }
    h.seedq().arg("work").assert().success();
    let rows = |repo: &str| {
        h.count(&format!(
            "SELECT (SELECT count(*) FROM pull_requests WHERE repo = '{repo}')
                  + (SELECT count(*) FROM pr_files WHERE repo = '{repo}')"
        ))
    };
    let jobs = |repo: &str| h.count(&format!("SELECT count(*) FROM jobs WHERE repo = '{repo}'"));
    let (b_rows, c_rows) = (rows("acme/b"), rows("acme/c"));
    assert!(b_rows > 5 && c_rows > 5);

    // An unknown name among known ones: exit 2, nothing removed.
    h.seedq()
        .args(["remove", "acme/a", "acme/nope"])
        .assert()
        .code(2)
        .stderr(contains("acme/nope"))
        .stderr(contains("nothing was removed"));
    assert!(jobs("acme/a") > 0);
    h.seedq()
        .args(["remove", "acme/a", "bad name"])
        .assert()
        .code(2);

    h.seedq()
        .args(["remove", "acme/a"])
        .assert()
        .success()
        .stdout(contains("removed acme/a:"));
    assert_eq!(rows("acme/a"), 0);
    assert_eq!(jobs("acme/a"), 0);
    h.seedq()
        .args(["remove", "acme/b", "--keep-data"])
        .assert()
        .success()
        .stdout(contains("its rows are kept"));
    assert_eq!(jobs("acme/b"), 0);
    assert_eq!(rows("acme/b"), b_rows);
    assert_eq!(rows("acme/c"), c_rows, "the others are untouched");
    assert_eq!(status_repos(&h), ["acme/c"]);
    // A removed repository can be enqueued again, from scratch.
    h.enqueue("acme/a");
    h.seedq().arg("work").assert().success();
    h.assert_complete(&fake, "acme/a");
}

#[test]
fn an_organisation_is_listed_with_its_filters_and_a_later_listing_picks_up_new_ones() {
    let fake = serving(vec![
        RepoSpec::new("acme/api-one", 3),
        RepoSpec::new("acme/api-two", 2),
        RepoSpec::new("acme/web", 2),
        RepoSpec::new("acme/api-fork", 2).fork(),
        RepoSpec::new("acme/api-old", 2).archived(),
        RepoSpec::new("other/api-x", 2),
    ]);
    let h = Harness::new(&fake.url(), &[token(1), token(2)]);
    h.seedq()
        .args(["enqueue", "--org", "acme", "--match", "api-*"])
        .assert()
        .success()
        .stdout(contains("queued org:acme"));
    assert_eq!(fake.stats().total_requests, 0, "enqueue sends nothing");
    h.seedq().arg("work").assert().success();
    let seeded = || {
        h.texts("SELECT DISTINCT repo FROM pull_requests ORDER BY repo")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    assert_eq!(seeded(), ["acme/api-one", "acme/api-two"]);
    h.assert_complete(&fake, "acme/api-one");
    h.assert_complete(&fake, "acme/api-two");
    let status = h.seedq().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("org:acme: listed"), "{text}");

    // Created since: a later listing enqueues it (and refreshes the others).
    fake.add_repo(RepoSpec::new("acme/api-three", 2));
    h.seedq()
        .args(["enqueue", "--org", "acme", "--match", "api-*"])
        .assert()
        .success();
    h.seedq().arg("work").assert().success();
    assert_eq!(seeded(), ["acme/api-one", "acme/api-three", "acme/api-two"]);
    h.assert_complete(&fake, "acme/api-three");
    assert_eq!(
        h.count("SELECT count(*) FROM repos WHERE name = 'acme/api-one' AND round = 2"),
        1,
        "a repository seeded before is refreshed"
    );
}

#[test]
fn a_user_listing_takes_forks_and_archived_when_asked_and_pages_through_many() {
    let mut repos: Vec<RepoSpec> = (1..=120)
        .map(|n| RepoSpec::new(&format!("octo/r{n:03}"), 0))
        .collect();
    repos.push(RepoSpec::new("octo/z-fork", 1).fork());
    repos.push(RepoSpec::new("octo/z-old", 1).archived());
    let fake = FakeGithub::spawn(FakeConfig {
        repos,
        users: ["octo".to_owned()].into(),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    h.seedq()
        .args([
            "enqueue",
            "--user",
            "octo",
            "--include-forks",
            "--include-archived",
        ])
        .assert()
        .success();
    h.seedq().arg("work").assert().success();
    h.assert_all_done();
    assert_eq!(
        h.count("SELECT count(*) FROM repos WHERE name LIKE 'octo/%'"),
        122,
        "two pages of 100, every repository once"
    );
    h.assert_complete(&fake, "octo/z-fork");
    h.assert_complete(&fake, "octo/z-old");
}

#[test]
fn bad_listings_are_refused_before_anything_is_written() {
    let fake = serving(vec![]);
    let h = Harness::new(&fake.url(), &[token(1)]);
    for args in [
        &["enqueue", "--org", "not a login"][..],
        &["enqueue", "--org", "acme", "--match", "api-[*"],
        &["enqueue", "acme/widgets", "--include-forks"],
        &["enqueue", "--user", "-octo"],
        &["enqueue"],
    ] {
        h.seedq().args(args).assert().code(2);
    }
    assert!(!h.db_exists(), "nothing written");
}

#[test]
fn an_organisation_that_does_not_exist_fails_its_listing_and_work_exits_3() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("octo/a", 1)],
        users: ["octo".to_owned()].into(),
        ..FakeConfig::default()
    });
    let h = Harness::new(&fake.url(), &[token(1)]);
    // A user is not an organisation: GitHub answers 404.
    h.seedq()
        .args(["enqueue", "--org", "octo"])
        .assert()
        .success();
    h.seedq()
        .arg("work")
        .assert()
        .code(3)
        .stderr(contains("org:octo"));
    let status = h.seedq().arg("status").output().unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("org:octo: its listing failed"), "{text}");
}

#[test]
fn status_text_counts_complete_and_waiting_repositories_on_a_line_and_all_shows_each() {
    let mut specs: Vec<RepoSpec> = (1..=12)
        .map(|i| RepoSpec::new(&format!("acme/done-{i:02}"), 2))
        .collect();
    specs.push(RepoSpec::new("acme/later-a", 2));
    specs.push(RepoSpec::new("acme/later-b", 2));
    let fake = serving(specs);
    let h = Harness::new(&fake.url(), &[token(1)]);
    for i in 1..=12 {
        h.enqueue(&format!("acme/done-{i:02}"));
    }
    // Not served: its list page fails (no token can see it).
    h.enqueue("acme/gone");
    h.seedq().args(["work", "--workers", "2"]).assert().code(3);
    h.enqueue("acme/later-a");
    h.enqueue("acme/later-b");

    let text = h.seedq().arg("status").output().unwrap();
    assert!(text.status.success());
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("12 repositories complete: 24 PRs"), "{text}");
    assert!(
        text.contains("2 repositories not started: 2 jobs queued; next acme/later-a, acme/later-b"),
        "{text}"
    );
    assert!(text.contains("`seedq status --all`"), "{text}");
    // The one with a problem is shown in full; the folded ones are not.
    assert!(text.contains("\nacme/gone: "), "{text}");
    assert!(text.contains("no token can see it"), "{text}");
    assert!(!text.contains("\nacme/done-01: "), "{text}");
    assert!(!text.contains("\nacme/later-a: "), "{text}");

    let all = h.seedq().args(["status", "--all"]).output().unwrap();
    let all = String::from_utf8_lossy(&all.stdout).into_owned();
    for i in 1..=12 {
        assert!(
            all.contains(&format!("\nacme/done-{i:02}: 2 of 2 PRs complete")),
            "{all}"
        );
    }
    assert!(all.contains("\nacme/later-b: 0 of 0 PRs complete"), "{all}");
    assert!(!all.contains("repositories complete:"), "{all}");
    // The JSON document always lists every repository.
    assert_eq!(status_repos(&h).len(), 15);
}
