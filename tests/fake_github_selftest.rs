//! Self-test of the fake GitHub server in `tests/support/fake_github/`: it must behave like
//! GitHub where seedq depends on it. Uses only std and a few-line HTTP/1.1 client over
//! `TcpStream`, so a bug in seedq's client cannot hide a bug in the fake.
//!
//! The module is included on its own (not through `mod support;`) so this test depends on
//! nothing but the fake: not on the harness, not on the seedq crate.

#[allow(dead_code)]
#[path = "support/fake_github/mod.rs"]
mod fake_github;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fake_github::{default_account, FakeConfig, FakeGithub, Faults, Outcome, RepoSpec};
use serde_json::Value;

/// An HTTP answer.
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn num(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .parse()
            .unwrap()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("bad json ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    /// The `rel="next"` URL of the link header.
    fn next(&self) -> Option<String> {
        links(self.header("link")?).remove("next")
    }
}

fn links(header: &str) -> HashMap<String, String> {
    header
        .split(", ")
        .map(|part| {
            let (url, rel) = part.split_once("; rel=").expect("link part");
            let url = url.trim_start_matches('<').trim_end_matches('>');
            (rel.trim_matches('"').to_string(), url.to_string())
        })
        .collect()
}

/// Sends one request on a fresh connection (`Connection: close`) and reads the answer.
/// `target` is a path (`/x?y`) or an absolute `http://host:port/x?y` URL.
fn request(fake: &FakeGithub, method: &str, target: &str, headers: &[(&str, &str)]) -> Resp {
    let path = match target.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => target,
    };
    let mut s = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n",
        fake.port()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Resp {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(fake: &FakeGithub, target: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    request(fake, "GET", target, &[("Authorization", &auth)])
}

/// Follows `rel="next"` from `first`, returning every page.
fn all_pages(fake: &FakeGithub, first: &str, token: &str) -> Vec<Resp> {
    let mut pages = vec![get(fake, first, token)];
    while let Some(next) = pages.last().unwrap().next() {
        assert!(pages.len() < 1000, "runaway pagination");
        pages.push(get(fake, &next, token));
    }
    for p in &pages {
        assert_eq!(p.status, 200, "{}", String::from_utf8_lossy(&p.body));
    }
    pages
}

/// Every item of every page (arrays, or the check-runs wrapper).
fn all_items(fake: &FakeGithub, first: &str, token: &str) -> Vec<Value> {
    all_pages(fake, first, token)
        .iter()
        .flat_map(|p| match p.json() {
            Value::Array(a) => a,
            Value::Object(mut o) => match o.remove("check_runs") {
                Some(Value::Array(a)) => a,
                _ => panic!("unexpected object"),
            },
            _ => panic!("unexpected json"),
        })
        .collect()
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn widgets(prs: u32) -> FakeConfig {
    FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", prs)],
        ..FakeConfig::default()
    }
}

#[test]
fn pull_list_links_are_absolute_and_point_at_repositories_id() {
    let fake = FakeGithub::spawn(widgets(250));
    let id = RepoSpec::new("acme/widgets", 250).id;
    let url = fake.url();
    let first = get(
        &fake,
        "/repos/acme/widgets/pulls?state=all&per_page=100",
        "t",
    );
    assert_eq!(first.status, 200);
    let base = format!("{url}/repositories/{id}/pulls?state=all&per_page=100");
    assert_eq!(
        first.header("link").unwrap(),
        format!("<{base}&page=2>; rel=\"next\", <{base}&page=3>; rel=\"last\"")
    );
    let second = get(&fake, &first.next().unwrap(), "t");
    assert_eq!(
        second.header("link").unwrap(),
        format!(
            "<{base}&page=1>; rel=\"prev\", <{base}&page=3>; rel=\"next\", \
             <{base}&page=3>; rel=\"last\", <{base}&page=1>; rel=\"first\""
        )
    );
    let numbers: Vec<u64> = all_items(
        &fake,
        "/repos/acme/widgets/pulls?state=all&per_page=100",
        "t",
    )
    .iter()
    .map(|p| p["number"].as_u64().unwrap())
    .collect();
    assert_eq!(
        numbers,
        (1..=250).rev().collect::<Vec<_>>(),
        "created desc by default"
    );

    // The /api/v3 prefix is kept in links; other endpoints link to /repos/{o}/{r}/...
    let ghes = get(
        &fake,
        "/api/v3/repos/acme/widgets/pulls?state=all&per_page=100",
        "t",
    );
    assert!(ghes
        .next()
        .unwrap()
        .starts_with(&format!("{url}/api/v3/repositories/{id}/pulls?")));
    let commits = get(
        &fake,
        "/repositories/{id}/pulls/3/commits"
            .replace("{id}", &id.to_string())
            .as_str(),
        "t",
    );
    assert_eq!(
        commits.next().unwrap(),
        format!("{url}/repos/acme/widgets/pulls/3/commits?page=2")
    );
}

#[test]
fn pr3_commits_are_capped_at_250_across_pages() {
    let fake = FakeGithub::spawn(widgets(10));
    let pages = all_pages(
        &fake,
        "/repos/acme/widgets/pulls/3/commits?per_page=100",
        "t",
    );
    let sizes: Vec<usize> = pages
        .iter()
        .map(|p| p.json().as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let shas: HashSet<String> = pages
        .iter()
        .flat_map(|p| p.json().as_array().unwrap().clone())
        .map(|c| c["sha"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shas.len(), 250);
    let detail = get(&fake, "/repos/acme/widgets/pulls/3", "t").json();
    assert_eq!(detail["commits"], 300, "the detail tells the real count");
    let head = detail["head"]["sha"].as_str().unwrap();
    assert!(!shas.contains(head), "the head commit is past the cap");
    let t = fake.truth("acme/widgets");
    assert_eq!((t.per_pr[2].commits, t.per_pr[2].commits_total), (250, 300));
    // PR 6: 120 commits, two pages, no cap.
    assert_eq!(
        all_items(
            &fake,
            "/repos/acme/widgets/pulls/6/commits?per_page=100",
            "t"
        )
        .len(),
        120
    );
}

#[test]
fn check_runs_come_wrapped_with_total_count() {
    let fake = FakeGithub::spawn(widgets(10));
    let truth = fake.truth("acme/widgets");
    for pr in &truth.per_pr {
        let r = get(
            &fake,
            &format!("/repos/acme/widgets/commits/{}/check-runs", pr.head_sha),
            "t",
        );
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["total_count"].as_u64().unwrap(), pr.check_runs);
        let runs = v["check_runs"].as_array().unwrap();
        assert_eq!(runs.len() as u64, pr.check_runs);
        for run in runs {
            assert_eq!(run["head_sha"], pr.head_sha.as_str());
        }
    }
    let unknown = get(
        &fake,
        &format!("/repos/acme/widgets/commits/{}/check-runs", "ab".repeat(20)),
        "t",
    );
    assert_eq!(unknown.status, 422);
}

#[test]
fn account_is_refused_after_limit_with_remaining_zero_until_reset() {
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 3,
        window: Duration::from_secs(1),
        ..widgets(5)
    });
    for left in [2, 1, 0] {
        let r = get(&fake, "/user", "tok");
        assert_eq!(r.status, 200);
        assert_eq!(r.num("x-ratelimit-remaining"), left);
        assert_eq!(r.num("x-ratelimit-limit"), 3);
        assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    }
    let refused = get(&fake, "/repos/acme/widgets/pulls/1", "tok");
    assert_eq!(refused.status, 403);
    assert_eq!(refused.num("x-ratelimit-remaining"), 0);
    assert_eq!(refused.num("x-ratelimit-used"), 3);
    let reset_ms = refused.num("x-ratelimit-reset-ms");
    assert!(reset_ms > now_ms() && reset_ms <= now_ms() + 1000);
    assert!(
        refused.num("x-ratelimit-reset") * 1000 >= reset_ms,
        "reset rounds up"
    );
    let msg = refused.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("API rate limit exceeded for user ID "),
        "{msg}"
    );
    let s = fake.stats();
    assert_eq!((s.counted_requests, s.refused_for_quota), (3, 1));
    assert_eq!(s.per_token["tok"].refused, 1);
    let log = fake.requests_log();
    assert_eq!(log[3].outcome, Outcome::RefusedForQuota);
    assert_eq!(
        log[3].reset_ms,
        Some(reset_ms),
        "the log keeps the advertised reset"
    );
    assert!(
        log[0].at_ms < reset_ms && log[0].at_ms + 1000 == reset_ms,
        "window from first use"
    );

    std::thread::sleep(Duration::from_millis(
        reset_ms.saturating_sub(now_ms()) + 20,
    ));
    let again = get(&fake, "/repos/acme/widgets/pulls/1", "tok");
    assert_eq!(again.status, 200);
    assert_eq!(
        again.num("x-ratelimit-remaining"),
        2,
        "a new window started"
    );
}

#[test]
fn exhaustion_status_can_be_429_or_alternate() {
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 0,
        alternate_exhaustion_status: true,
        ..widgets(1)
    });
    let statuses: Vec<u16> = (0..3).map(|_| get(&fake, "/user", "x").status).collect();
    assert_eq!(statuses, vec![403, 429, 403]);
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 0,
        exhaustion_status: 429,
        ..widgets(1)
    });
    assert_eq!(get(&fake, "/user", "x").status, 429);
}

#[test]
fn tokens_of_one_account_share_its_quota() {
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 2,
        shared_accounts: [("a", "octo"), ("b", "octo")]
            .into_iter()
            .map(|(t, l)| (t.to_string(), l.to_string()))
            .collect(),
        ..widgets(3)
    });
    let a = get(&fake, "/user", "a");
    assert_eq!(a.json()["login"], "octo");
    assert_eq!(get(&fake, "/user", "b").num("x-ratelimit-remaining"), 0);
    assert_eq!(get(&fake, "/user", "a").status, 403);
    assert_eq!(get(&fake, "/user", "b").status, 403);
    let c = get(&fake, "/user", "c");
    assert_eq!(c.status, 200, "another account is unaffected");
    assert_eq!(c.json()["login"], default_account("c").as_str());
    assert!(default_account("c").starts_with("user-") && default_account("c").len() == 13);
}

#[test]
fn conditional_request_gets_304_and_costs_nothing() {
    let fake = FakeGithub::spawn(widgets(3));
    let first = get(&fake, "/repos/acme/widgets/pulls/2", "t");
    let etag = first.header("etag").unwrap().to_string();
    assert!(etag.starts_with("W/\""), "{etag}");
    let auth = ("Authorization", "token t");
    let again = request(
        &fake,
        "GET",
        "/repos/acme/widgets/pulls/2",
        &[auth, ("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(
        again.num("x-ratelimit-remaining"),
        first.num("x-ratelimit-remaining")
    );
    let stale = request(
        &fake,
        "GET",
        "/repos/acme/widgets/pulls/2",
        &[auth, ("If-None-Match", "W/\"nope\"")],
    );
    assert_eq!(stale.status, 200);
    let s = fake.stats();
    assert_eq!(
        (s.total_requests, s.counted_requests, s.not_modified),
        (3, 2, 1)
    );
    assert_eq!(s.pages_served["/repos/acme/widgets/pulls/2"], 2);
}

#[test]
fn invalid_and_missing_tokens_get_401() {
    let fake = FakeGithub::spawn(FakeConfig {
        invalid_tokens: HashSet::from(["bad".to_string()]),
        ..widgets(3)
    });
    let bad = get(&fake, "/repos/acme/widgets/pulls", "bad");
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["message"], "Bad credentials");
    assert_eq!(get(&fake, "/rate_limit", "bad").status, 401);
    assert_eq!(request(&fake, "GET", "/user", &[]).status, 401);
    assert_eq!(get(&fake, "/user", "good").status, 200);
    let s = fake.stats();
    assert_eq!((s.unauthorized, s.counted_requests), (3, 1));
}

#[test]
fn rate_limit_endpoint_is_free() {
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 10,
        ..widgets(3)
    });
    get(&fake, "/user", "t");
    for _ in 0..3 {
        let r = get(&fake, "/rate_limit", "t");
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["resources"]["core"]["remaining"], 9);
        assert_eq!(v["rate"]["limit"], 10);
        assert_eq!(r.num("x-ratelimit-remaining"), 9);
    }
    assert_eq!(fake.stats().counted_requests, 1);
}

#[test]
fn truth_matches_what_pages_serve() {
    let fake = FakeGithub::spawn(widgets(12));
    let truth = fake.truth("acme/widgets");
    assert_eq!(truth.prs, 12);
    let list = all_items(&fake, "/repos/acme/widgets/pulls?state=all&per_page=5", "t");
    assert_eq!(list.len(), 12);
    let mut ids = HashSet::new();
    let (mut commits, mut reviews, mut files, mut runs) = (0, 0, 0, 0);
    for pr in &truth.per_pr {
        let n = pr.number;
        let d = get(&fake, &format!("/repos/acme/widgets/pulls/{n}"), "t").json();
        assert_eq!(d["title"], pr.title.as_str());
        assert_eq!(d["head"]["sha"], pr.head_sha.as_str());
        assert_eq!(d["additions"].as_u64().unwrap(), pr.additions);
        assert_eq!(d["deletions"].as_u64().unwrap(), pr.deletions);
        assert_eq!(d["changed_files"].as_u64().unwrap(), pr.changed_files);
        assert_eq!(d["commits"].as_u64().unwrap(), pr.commits_total);
        assert_eq!(d["user"]["login"].as_str().map(str::to_string), pr.author);
        assert_eq!(d["state"], pr.state.as_str());
        assert_eq!(d["updated_at"], pr.updated_at.as_str());
        let base = format!("/repos/acme/widgets/pulls/{n}");
        let c = all_items(&fake, &format!("{base}/commits?per_page=100"), "t");
        let r = all_items(&fake, &format!("{base}/reviews?per_page=2"), "t");
        let f = all_items(&fake, &format!("{base}/files?per_page=100"), "t");
        let rc = all_items(&fake, &format!("{base}/comments?per_page=2"), "t");
        let ic = all_items(
            &fake,
            &format!("/repos/acme/widgets/issues/{n}/comments?per_page=2"),
            "t",
        );
        let cr = all_items(
            &fake,
            &format!(
                "/repos/acme/widgets/commits/{}/check-runs?per_page=2",
                pr.head_sha
            ),
            "t",
        );
        assert_eq!(c.len() as u64, pr.commits, "commits of #{n}");
        assert_eq!(r.len() as u64, pr.reviews, "reviews of #{n}");
        assert_eq!(f.len() as u64, pr.files, "files of #{n}");
        assert_eq!(
            rc.len() as u64,
            pr.review_comments,
            "review comments of #{n}"
        );
        assert_eq!(ic.len() as u64, pr.issue_comments, "issue comments of #{n}");
        assert_eq!(cr.len() as u64, pr.check_runs, "check runs of #{n}");
        let add: u64 = f.iter().map(|x| x["additions"].as_u64().unwrap()).sum();
        assert_eq!(add, pr.additions);
        for item in r.iter().chain(&rc).chain(&ic).chain(&cr) {
            assert!(
                ids.insert(item["id"].as_u64().unwrap()),
                "duplicate id {}",
                item["id"]
            );
        }
        commits += c.len() as u64;
        reviews += r.len() as u64;
        files += f.len() as u64;
        runs += cr.len() as u64;
    }
    assert_eq!(
        (commits, reviews, files, runs),
        (truth.commits, truth.reviews, truth.files, truth.check_runs)
    );
    // The quirky PRs.
    assert_eq!(truth.per_pr[0].title, "'; DROP TABLE jobs;--");
    assert!(truth.per_pr[1].title.contains('🚀'));
    assert!(truth.per_pr[3].title.contains('"') && truth.per_pr[3].title.contains('\n'));
    assert_eq!(truth.per_pr[4].files, 150);
    assert_eq!(truth.per_pr[6].author, None);
}

#[test]
fn dropped_connection_yields_eof_without_bytes() {
    let fake = FakeGithub::spawn(FakeConfig {
        faults: Faults {
            p_drop: 1.0,
            ..Faults::default()
        },
        ..widgets(3)
    });
    let mut s = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(
        b"GET /repos/acme/widgets/pulls HTTP/1.1\r\nHost: x\r\nAuthorization: token t\r\n\r\n",
    )
    .unwrap();
    let mut buf = Vec::new();
    match s.read_to_end(&mut buf) {
        Ok(_) => assert!(buf.is_empty(), "got {:?}", String::from_utf8_lossy(&buf)),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    // Faults never apply to /rate_limit.
    assert_eq!(get(&fake, "/rate_limit", "t").status, 200);
    let s = fake.stats();
    assert_eq!(
        (s.drops_injected, s.total_requests, s.counted_requests),
        (1, 2, 0)
    );
}

#[test]
fn server_errors_and_secondary_limits_are_injected() {
    let fake = FakeGithub::spawn(FakeConfig {
        faults: Faults {
            p_server_error: 1.0,
            ..Faults::default()
        },
        ..widgets(3)
    });
    let r = get(&fake, "/repos/acme/widgets/pulls", "t");
    assert!(r.status == 502 || r.status == 503);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    fake.set_faults(Faults {
        p_secondary: 1.0,
        secondary_retry_after: Some(1),
        ..Faults::default()
    });
    let r = get(&fake, "/repos/acme/widgets/pulls", "t");
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("You have exceeded a secondary rate limit"));
    assert!(
        r.num("x-ratelimit-remaining") > 0,
        "quota is left: not a primary limit"
    );
    fake.set_faults(Faults::default());
    assert_eq!(get(&fake, "/user", "t").status, 403, "still penalised");
    assert_eq!(
        get(&fake, "/user", "other").status,
        200,
        "other accounts are fine"
    );
    std::thread::sleep(Duration::from_millis(1050));
    assert_eq!(get(&fake, "/user", "t").status, 200);
    let s = fake.stats();
    assert_eq!(
        (
            s.server_errors_injected,
            s.secondary_injected,
            s.sent_during_secondary_penalty
        ),
        (1, 1, 1)
    );
    let log = fake.requests_log();
    let outcomes: Vec<Outcome> = log.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::ServerError,
            Outcome::SecondaryInjected,
            Outcome::SecondaryPenalty,
            Outcome::Served,
            Outcome::Served
        ]
    );
    assert_eq!(log[3].token.as_deref(), Some("other"));
    assert!(log[4].counted && log[4].path == "/user" && log[4].status == 200);
}

#[test]
fn touch_pr_changes_title_updated_at_reviews_and_files() {
    let fake = FakeGithub::spawn(widgets(20));
    let before = fake.truth("acme/widgets").per_pr[9].clone();
    let page = get(&fake, "/repos/acme/widgets/pulls/10", "t");
    let etag = page.header("etag").unwrap().to_string();
    fake.touch_pr("acme/widgets", 10);
    let after = fake.truth("acme/widgets").per_pr[9].clone();
    assert_eq!(after.title, format!("{} (edited)", before.title));
    assert!(after.updated_at > before.updated_at);
    assert_eq!(after.reviews, before.reviews + 1);
    assert_eq!(after.files, before.files + 1);
    let auth = ("Authorization", "Bearer t");
    let again = request(
        &fake,
        "GET",
        "/repos/acme/widgets/pulls/10",
        &[auth, ("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 200, "a changed page has a new etag");
    assert_eq!(again.json()["title"], after.title.as_str());
    let recent = get(
        &fake,
        "/repos/acme/widgets/pulls?state=all&sort=updated&direction=desc&per_page=1",
        "t",
    );
    assert_eq!(recent.json()[0]["number"], 10);
    // Also through the control route.
    assert_eq!(
        request(&fake, "POST", "/_fake/touch/acme/widgets/10", &[]).status,
        204
    );
    assert!(fake.truth("acme/widgets").per_pr[9]
        .title
        .ends_with("(edited 2)"));
}

#[test]
fn list_honours_state_and_sort() {
    let fake = FakeGithub::spawn(widgets(120));
    let truth = fake.truth("acme/widgets");
    let open = truth.per_pr.iter().filter(|p| p.state == "open").count();
    let got_open = all_items(&fake, "/repos/acme/widgets/pulls?per_page=100", "t");
    assert_eq!(got_open.len(), open, "state=open by default");
    assert!(got_open.iter().all(|p| p["state"] == "open"));
    let closed = all_items(
        &fake,
        "/repos/acme/widgets/pulls?state=closed&per_page=100",
        "t",
    );
    assert_eq!(closed.len(), 120 - open);
    let by_updated = all_items(
        &fake,
        "/repos/acme/widgets/pulls?state=all&sort=updated&per_page=100",
        "t",
    );
    let times: Vec<&str> = by_updated
        .iter()
        .map(|p| p["updated_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "sort=updated is ascending by default"
    );
    let asc = all_items(
        &fake,
        "/repos/acme/widgets/pulls?state=all&direction=asc&per_page=100",
        "t",
    );
    assert_eq!(asc[0]["number"], 1);
}

#[test]
fn alternate_routes_and_not_found() {
    let mut cfg = widgets(5);
    cfg.repo_errors.insert("acme/blocked".into(), 451);
    let fake = FakeGithub::spawn(cfg);
    let id = RepoSpec::new("acme/widgets", 5).id;
    let a = get(&fake, "/repos/acme/widgets/pulls/1", "t").body;
    let b = get(&fake, &format!("/repositories/{id}/pulls/1"), "t").body;
    let c = get(&fake, "/api/v3/repos/ACME/Widgets/pulls/1", "t").body;
    assert_eq!(a, b);
    assert_eq!(a, c);
    for missing in [
        "/repos/acme/nope/pulls",
        "/repos/acme/widgets/pulls/6",
        "/repos/acme/widgets/pulls/0",
        "/repos/acme/widgets/pulls/x/files",
        "/repositories/1/pulls",
        "/nothing",
    ] {
        let r = get(&fake, missing, "t");
        assert_eq!(r.status, 404, "{missing}");
        assert_eq!(r.json()["message"], "Not Found");
        assert!(r.header("x-ratelimit-remaining").is_some());
    }
    assert_eq!(get(&fake, "/repos/acme/blocked/pulls", "t").status, 451);
    assert_eq!(
        fake.stats().counted_requests,
        10,
        "404s and 451s count, like GitHub"
    );
}

#[test]
fn max_concurrent_counts_parallel_requests() {
    let fake = FakeGithub::spawn(FakeConfig {
        latency: Duration::from_millis(300),
        ..widgets(3)
    });
    std::thread::scope(|s| {
        for i in 0..4 {
            let fake = &fake;
            s.spawn(move || assert_eq!(get(fake, "/user", &format!("t{i}")).status, 200));
        }
    });
    let stats = fake.stats();
    assert!(stats.max_concurrent >= 2, "{}", stats.max_concurrent);
    assert_eq!(stats.per_token.len(), 4);
}

#[test]
fn data_is_deterministic_and_big_repos_are_cheap() {
    let one = FakeGithub::spawn(widgets(20_000));
    let two = FakeGithub::spawn(widgets(20_000));
    for path in [
        "/repos/acme/widgets/pulls?state=all&per_page=100&page=7",
        "/repos/acme/widgets/pulls/5/files",
    ] {
        assert_eq!(get(&one, path, "t").body, get(&two, path, "t").body);
    }
    let first = get(
        &one,
        "/repos/acme/widgets/pulls?state=all&per_page=100",
        "t",
    );
    let last = links(first.header("link").unwrap())["last"].clone();
    assert!(last.ends_with("page=200"), "{last}");
    let page = get(&one, &last, "t").json();
    assert_eq!(page.as_array().unwrap().last().unwrap()["number"], 1);
    let stats = request(&one, "GET", "/_fake/stats", &[]).json();
    assert_eq!(stats["total_requests"], 4);
    assert_eq!(one.truth("acme/widgets").per_pr.len(), 20_000);
}

#[test]
fn ids_are_unique_across_repos_of_one_server() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![
            RepoSpec::new("acme/widgets", 12),
            RepoSpec::new("other/x", 12),
        ],
        ..FakeConfig::default()
    });
    let mut ids = HashSet::new();
    for repo in ["acme/widgets", "other/x"] {
        for pr in all_items(
            &fake,
            &format!("/repos/{repo}/pulls?state=all&per_page=100"),
            "t",
        ) {
            assert!(ids.insert(pr["id"].as_u64().unwrap()));
            let n = pr["number"].as_u64().unwrap();
            let sha = pr["head"]["sha"].as_str().unwrap();
            for path in [
                format!("/repos/{repo}/pulls/{n}/reviews"),
                format!("/repos/{repo}/pulls/{n}/comments"),
                format!("/repos/{repo}/issues/{n}/comments"),
                format!("/repos/{repo}/commits/{sha}/check-runs"),
            ] {
                for item in all_items(&fake, &path, "t") {
                    let id = item["id"].as_u64().unwrap();
                    assert!(id < 1 << 55, "ids stay exact in an f64");
                    assert!(ids.insert(id), "duplicate id {id} at {path}");
                }
            }
        }
    }
    // Every route also answers under the GHES prefix.
    assert_eq!(get(&fake, "/api/v3/rate_limit", "t").status, 200);
    assert_eq!(get(&fake, "/api/v3/user", "t").status, 200);
}
