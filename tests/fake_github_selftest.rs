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

use fake_github::data::heavy;
use fake_github::{default_account, FakeConfig, FakeGithub, Faults, Outcome, RepoSpec, Truth};
use serde_json::{json, Value};

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
    request_with_body(fake, method, target, headers, b"")
}

/// [`request`] with a body (sent with its `Content-Length`).
fn request_with_body(
    fake: &FakeGithub,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
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
    if !body.is_empty() {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    s.write_all(&bytes).unwrap();
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

/// Checks `repo`'s truth against what REST serves: each PR's detail, and every page of each
/// of its lists (following `link`), with ids unique and totals summed. Returns the truth.
fn assert_pages_serve_truth(fake: &FakeGithub, repo: &str) -> Truth {
    let truth = fake.truth(repo);
    let list = all_items(
        fake,
        &format!("/repos/{repo}/pulls?state=all&per_page=5"),
        "t",
    );
    assert_eq!(list.len() as u64, truth.prs);
    let mut ids = HashSet::new();
    let (mut commits, mut reviews, mut files, mut runs) = (0, 0, 0, 0);
    for pr in &truth.per_pr {
        let n = pr.number;
        let base = format!("/repos/{repo}/pulls/{n}");
        let d = get(fake, &base, "t").json();
        assert_eq!(d["title"], pr.title.as_str());
        assert_eq!(d["head"]["sha"], pr.head_sha.as_str());
        assert_eq!(d["additions"].as_u64().unwrap(), pr.additions);
        assert_eq!(d["deletions"].as_u64().unwrap(), pr.deletions);
        assert_eq!(d["changed_files"].as_u64().unwrap(), pr.changed_files);
        assert_eq!(d["commits"].as_u64().unwrap(), pr.commits_total);
        assert_eq!(d["user"]["login"].as_str().map(str::to_string), pr.author);
        assert_eq!(d["state"], pr.state.as_str());
        assert_eq!(d["updated_at"], pr.updated_at.as_str());
        let c = all_items(fake, &format!("{base}/commits?per_page=100"), "t");
        let r = all_items(fake, &format!("{base}/reviews?per_page=2"), "t");
        let f = all_items(fake, &format!("{base}/files?per_page=100"), "t");
        let rc = all_items(fake, &format!("{base}/comments?per_page=2"), "t");
        let ic = all_items(
            fake,
            &format!("/repos/{repo}/issues/{n}/comments?per_page=2"),
            "t",
        );
        let cr = all_items(
            fake,
            &format!(
                "/repos/{repo}/commits/{}/check-runs?per_page=2",
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
    truth
}

#[test]
fn truth_matches_what_pages_serve() {
    let fake = FakeGithub::spawn(widgets(12));
    let truth = assert_pages_serve_truth(&fake, "acme/widgets");
    assert_eq!(truth.prs, 12);
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

// --- GraphQL ---------------------------------------------------------------------------

/// The PR fields seedq's list and batch queries select.
const PULL_FRAGMENT: &str = "fragment pull on PullRequest { number title state isDraft \
    createdAt updatedAt closedAt mergedAt additions deletions changedFiles headRefOid \
    headRefName baseRefName author { __typename login } }";

/// seedq's list-page query (with [`PULL_FRAGMENT`]).
const LIST_QUERY: &str = "query ($owner: String!, $name: String!, $first: Int!, $after: String, \
    $states: [PullRequestState!], $order: IssueOrderField!) {
  rateLimit { limit cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pullRequests(first: $first, after: $after, states: $states, orderBy: {field: $order, direction: DESC}) {
      pageInfo { hasNextPage endCursor }
      nodes { ...pull }
    }
  }
}
";

/// seedq's batch of per-PR pages (with [`PULL_FRAGMENT`]); `HEAD_OID` is replaced.
const BATCH_QUERY: &str = r#"query ($owner: String!, $name: String!, $after0: String) {
  rateLimit { limit cost remaining resetAt }
  repository(owner: $owner, name: $name) {
    pr12: pullRequest(number: 12) {
      ...pull
      commits(first: 100) { pageInfo { hasNextPage endCursor } nodes { commit { oid message author { name email date user { login } } } } }
      reviews(first: 100) { pageInfo { hasNextPage endCursor } nodes { fullDatabaseId author { __typename login } state submittedAt } }
      comments(first: 100) { pageInfo { hasNextPage endCursor } nodes { fullDatabaseId author { __typename login } createdAt body } }
    }
    pr5: pullRequest(number: 5) {
      files(first: 100, after: $after0) { pageInfo { hasNextPage endCursor } nodes { path additions deletions changeType } }
    }
    head12: object(oid: "HEAD_OID") {
      ... on Commit { statusCheckRollup { contexts(first: 100) { pageInfo { hasNextPage endCursor } nodes { __typename ... on CheckRun { databaseId name status conclusion startedAt completedAt } } } } }
    }
  }
}
"#;

/// A query costing `1 + 3 * first` requests: three connections under each of `first` PRs.
fn three_per_pr(first: u32) -> String {
    format!(
        "query {{ rateLimit {{ cost nodeCount }} repository(owner: \"acme\", name: \"widgets\") \
         {{ pullRequests(first: {first}) {{ nodes {{ commits(first: 1) {{ totalCount }} \
         reviews(first: 1) {{ totalCount }} files(first: 1) {{ totalCount }} }} }} }} }}"
    )
}

/// A query whose connections nest three deep: `pullRequests` > `commits` > `contexts`.
fn deep_query(contexts: u32) -> String {
    format!(
        "query {{ rateLimit {{ cost nodeCount }} repository(owner: \"acme\", name: \"widgets\") \
         {{ pullRequests(first: 100) {{ nodes {{ commits(first: 100) {{ nodes {{ commit {{ \
         statusCheckRollup {{ contexts(first: {contexts}) {{ totalCount }} }} }} }} }} }} }} }} }}"
    )
}

fn gql_at(fake: &FakeGithub, path: &str, token: &str, query: &str, variables: Value) -> Resp {
    let body = serde_json::to_vec(&json!({"query": query, "variables": variables})).unwrap();
    let auth = format!("Bearer {token}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    request_with_body(fake, "POST", path, &headers, &body)
}

fn gql(fake: &FakeGithub, token: &str, query: &str, variables: Value) -> Resp {
    gql_at(fake, "/graphql", token, query, variables)
}

/// `data` of an answer that must be a 200 without errors.
fn gql_data(fake: &FakeGithub, token: &str, query: &str, variables: Value) -> Value {
    let r = gql(fake, token, query, variables);
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    assert!(v.get("errors").is_none(), "unexpected errors: {v}");
    v["data"].clone()
}

/// The errors of a 200 answer that must have no `data`.
fn gql_refusal(r: &Resp) -> Vec<Value> {
    let v = r.json();
    assert_eq!(r.status, 200, "{v}");
    assert!(v.get("data").is_none(), "no data expected: {v}");
    v["errors"].as_array().expect("errors").clone()
}

/// Every node of a connection, following `endCursor`: `query` takes `$after` and
/// `pointer` locates the connection in `data` (a null on the way means no nodes).
fn gql_nodes(fake: &FakeGithub, query: &str, mut variables: Value, pointer: &str) -> Vec<Value> {
    let mut nodes = Vec::new();
    variables["after"] = Value::Null;
    for _ in 0..1000 {
        let data = gql_data(fake, "t", query, variables.clone());
        let Some(conn) = data.pointer(pointer).filter(|c| !c.is_null()) else {
            return nodes;
        };
        nodes.extend(conn["nodes"].as_array().unwrap().iter().cloned());
        if conn["pageInfo"]["hasNextPage"] != true {
            return nodes;
        }
        variables["after"] = conn["pageInfo"]["endCursor"].clone();
    }
    panic!("runaway pagination");
}

/// An actor as REST names it: a bot's login gets its `[bot]` back.
fn rest_login(actor: &Value) -> Value {
    match actor["__typename"].as_str() {
        Some("Bot") => json!(format!("{}[bot]", actor["login"].as_str().unwrap())),
        _ => actor["login"].clone(),
    }
}

/// A commit author as REST names it: the user's login, else the login of a noreply email.
fn rest_commit_login(git_actor: &Value) -> Value {
    if !git_actor["user"].is_null() {
        return git_actor["user"]["login"].clone();
    }
    match git_actor["email"]
        .as_str()
        .and_then(|e| e.strip_suffix("@users.noreply.github.com"))
    {
        Some(login) => json!(login),
        None => Value::Null,
    }
}

fn instant(t: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(t.as_str().unwrap()).unwrap()
}

const PR_COMMITS: &str = r#"query ($n: Int!, $after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { commits(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { commit { oid message authoredDate author { name email date user { login } } } } } } } }"#;
const PR_REVIEWS: &str = r#"query ($n: Int!, $after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { reviews(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { fullDatabaseId databaseId author { __typename login } state submittedAt } } } } }"#;
const PR_FILES: &str = r#"query ($n: Int!, $after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { files(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { path additions deletions changeType } } } } }"#;
const PR_COMMENTS: &str = r#"query ($n: Int!, $after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { comments(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { fullDatabaseId author { __typename login } createdAt body } } } } }"#;
const PR_CONTEXTS: &str = r#"query ($n: Int!, $after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { statusCheckRollup { contexts(first: 100, after: $after) { pageInfo { hasNextPage endCursor } nodes { __typename ... on CheckRun { databaseId name status conclusion } ... on StatusContext { context state } } } } } } }"#;

#[test]
fn cursors_are_opaque_offsets_shaped_like_githubs() {
    use fake_github::graphql::cursor::{decode, encode};
    assert!(
        encode(0).starts_with("Y3Vyc29yOnYyOj"),
        "base64 of `cursor:v2:`"
    );
    for n in [0, 1, 99, 100, 2999, u64::MAX] {
        assert_eq!(decode(&encode(n)), Some(n));
    }
    for bogus in [
        "",
        "nope",
        "Y3Vyc29yOnYyOg==",
        "Y3Vyc29yOnYyOnh4",
        "Y3Vyc29yOnYyOpHOAAA=",
    ] {
        assert_eq!(decode(bogus), None, "{bogus}");
    }
}

#[test]
fn graphql_rows_match_rest_rows_for_every_pr() {
    // 45 PRs: #42 is dependabot's, #7 and #23 are by deleted accounts.
    let fake = FakeGithub::spawn(widgets(45));
    let truth = fake.truth("acme/widgets");
    let authors: Vec<Option<&str>> = truth.per_pr.iter().map(|p| p.author.as_deref()).collect();
    assert!(authors.contains(&Some("dependabot[bot]")) && authors.contains(&None));

    // The list, newest first, in both APIs.
    let rest_numbers: Vec<Value> = all_items(
        &fake,
        "/repos/acme/widgets/pulls?state=all&per_page=100",
        "t",
    )
    .iter()
    .map(|p| p["number"].clone())
    .collect();
    let list = [LIST_QUERY, PULL_FRAGMENT].concat();
    let vars = json!({"owner": "acme", "name": "widgets", "first": 7, "states": null, "order": "CREATED_AT"});
    let pulls = gql_nodes(&fake, &list, vars, "/repository/pullRequests");
    let gql_numbers: Vec<Value> = pulls.iter().map(|p| p["number"].clone()).collect();
    assert_eq!(gql_numbers, rest_numbers);

    let (mut offset_dates, mut statuses) = (0, 0);
    for p in &pulls {
        let n = p["number"].as_u64().unwrap();
        let base = format!("/repos/acme/widgets/pulls/{n}");
        let d = get(&fake, &base, "t").json();
        let rest_pull = json!([
            d["number"],
            d["title"],
            d["state"],
            d["merged"],
            d["user"]["login"],
            d["created_at"],
            d["updated_at"],
            d["closed_at"],
            d["merged_at"],
            d["additions"],
            d["deletions"],
            d["changed_files"],
            d["head"]["sha"],
            d["head"]["ref"],
            d["base"]["ref"],
            d["draft"]
        ]);
        let (state, merged) = match p["state"].as_str().unwrap() {
            "MERGED" => ("closed", true),
            "CLOSED" => ("closed", false),
            "OPEN" => ("open", false),
            other => panic!("state {other}"),
        };
        let gql_pull = json!([
            p["number"],
            p["title"],
            state,
            merged,
            rest_login(&p["author"]),
            p["createdAt"],
            p["updatedAt"],
            p["closedAt"],
            p["mergedAt"],
            p["additions"],
            p["deletions"],
            p["changedFiles"],
            p["headRefOid"],
            p["headRefName"],
            p["baseRefName"],
            p["isDraft"]
        ]);
        assert_eq!(gql_pull, rest_pull, "pull #{n}");

        let vars = json!({"n": n});
        let rest_commits: Vec<Value> =
            all_items(&fake, &format!("{base}/commits?per_page=100"), "t")
                .iter()
                .map(|c| {
                    json!([
                        c["sha"],
                        c["author"]["login"],
                        c["commit"]["author"]["date"],
                        c["commit"]["message"],
                        c["commit"]["author"]["email"]
                    ])
                })
                .collect();
        let commits = gql_nodes(
            &fake,
            PR_COMMITS,
            vars.clone(),
            "/repository/pullRequest/commits",
        );
        let gql_commits: Vec<Value> = commits
            .iter()
            .map(|c| &c["commit"])
            .map(|c| {
                json!([
                    c["oid"],
                    rest_commit_login(&c["author"]),
                    c["authoredDate"],
                    c["message"],
                    c["author"]["email"]
                ])
            })
            .collect();
        assert_eq!(gql_commits, rest_commits, "commits of #{n}");
        for c in commits.iter().map(|c| &c["commit"]) {
            assert_eq!(
                instant(&c["author"]["date"]),
                instant(&c["authoredDate"]),
                "same instant"
            );
            offset_dates += !c["author"]["date"].as_str().unwrap().ends_with('Z') as u32;
        }

        let rest_reviews: Vec<Value> =
            all_items(&fake, &format!("{base}/reviews?per_page=100"), "t")
                .iter()
                .map(|r| json!([r["id"], r["user"]["login"], r["state"], r["submitted_at"]]))
                .collect();
        let gql_reviews: Vec<Value> = gql_nodes(
            &fake,
            PR_REVIEWS,
            vars.clone(),
            "/repository/pullRequest/reviews",
        )
        .iter()
        .map(|r| {
            let id: u64 = r["fullDatabaseId"].as_str().unwrap().parse().unwrap();
            assert_eq!(r["databaseId"], id);
            json!([id, rest_login(&r["author"]), r["state"], r["submittedAt"]])
        })
        .collect();
        assert_eq!(gql_reviews, rest_reviews, "reviews of #{n}");

        let rest_files: Vec<Value> = all_items(&fake, &format!("{base}/files?per_page=100"), "t")
            .iter()
            .map(|f| json!([f["filename"], f["status"], f["additions"], f["deletions"]]))
            .collect();
        let gql_files: Vec<Value> = gql_nodes(
            &fake,
            PR_FILES,
            vars.clone(),
            "/repository/pullRequest/files",
        )
        .iter()
        .map(|f| {
            let status = match f["changeType"].as_str().unwrap() {
                "ADDED" => "added",
                "DELETED" => "removed",
                "MODIFIED" => "modified",
                "RENAMED" => "renamed",
                other => panic!("changeType {other}"),
            };
            json!([f["path"], status, f["additions"], f["deletions"]])
        })
        .collect();
        assert_eq!(gql_files, rest_files, "files of #{n}");

        let rest_comments: Vec<Value> = all_items(
            &fake,
            &format!("/repos/acme/widgets/issues/{n}/comments?per_page=100"),
            "t",
        )
        .iter()
        .map(|c| json!([c["id"], c["user"]["login"], c["created_at"], c["body"]]))
        .collect();
        let gql_comments: Vec<Value> = gql_nodes(
            &fake,
            PR_COMMENTS,
            vars.clone(),
            "/repository/pullRequest/comments",
        )
        .iter()
        .map(|c| {
            let id: u64 = c["fullDatabaseId"].as_str().unwrap().parse().unwrap();
            json!([id, rest_login(&c["author"]), c["createdAt"], c["body"]])
        })
        .collect();
        assert_eq!(gql_comments, rest_comments, "issue comments of #{n}");

        let head = d["head"]["sha"].as_str().unwrap();
        let rest_runs: Vec<Value> = all_items(
            &fake,
            &format!("/repos/acme/widgets/commits/{head}/check-runs?per_page=100"),
            "t",
        )
        .iter()
        .map(|r| json!([r["id"], r["name"], r["status"], r["conclusion"]]))
        .collect();
        let contexts = gql_nodes(
            &fake,
            PR_CONTEXTS,
            vars,
            "/repository/pullRequest/statusCheckRollup/contexts",
        );
        let lower = |v: &Value| {
            v.as_str()
                .map_or(Value::Null, |s| json!(s.to_ascii_lowercase()))
        };
        let gql_runs: Vec<Value> = contexts
            .iter()
            .filter(|c| c["__typename"] == "CheckRun")
            .map(|r| {
                json!([
                    r["databaseId"],
                    r["name"],
                    lower(&r["status"]),
                    lower(&r["conclusion"])
                ])
            })
            .collect();
        assert_eq!(gql_runs, rest_runs, "check runs of #{n}");
        let status_positions: Vec<usize> = contexts
            .iter()
            .enumerate()
            .filter(|(_, c)| c["__typename"] == "StatusContext")
            .map(|(i, _)| i)
            .collect();
        assert!(
            status_positions.is_empty() || status_positions == [0],
            "one status, first"
        );
        statuses += status_positions.len();
    }
    assert!(
        offset_dates > 0,
        "some commit dates carry their own time zone"
    );
    assert!(statuses > 0, "some head commits have a commit status");
}

#[test]
fn graphql_cost_follows_githubs_formula() {
    let fake = FakeGithub::spawn(widgets(120));
    let list = [LIST_QUERY, PULL_FRAGMENT].concat();
    let list_vars = json!({"owner": "acme", "name": "widgets", "first": 100, "after": null, "states": null, "order": "CREATED_AT"});
    let batch = [BATCH_QUERY, PULL_FRAGMENT].concat();
    let batch_vars = json!({"owner": "acme", "name": "widgets", "after0": null});
    // (query, variables, requests, expected cost)
    let cases: Vec<(String, Value, u32)> = vec![
        (list, list_vars, 1),                // one connection: 1 request
        (batch, batch_vars, 1),              // five connections under lookups: round(0.05) -> 1
        (three_per_pr(16), json!({}), 1),    // 1 + 48 = 49 -> round(0.49) = 0 -> at least 1
        (three_per_pr(82), json!({}), 2),    // 1 + 246 = 247 -> 2
        (three_per_pr(83), json!({}), 3),    // 1 + 249 = 250 -> 2.5 rounds up
        (deep_query(40), json!({}), 101),    // 1 + 100 + 100 * 100 = 10,101 -> 101
        (r#"{ repository(owner: "acme", name: "widgets") { pullRequest(number: 1) { title } } }"#.into(), json!({}), 1),
    ];
    let mut used = 0;
    for (query, vars, cost) in cases {
        let r = gql(&fake, "t", &query, vars);
        let v = r.json();
        assert_eq!(r.status, 200, "{v}");
        assert!(v.get("errors").is_none(), "{v}");
        if let Some(reported) = v["data"]["rateLimit"]["cost"].as_u64() {
            assert_eq!(reported, cost as u64, "{query}");
        }
        used += cost;
        assert_eq!(r.num("x-ratelimit-used"), used as u64, "{query}");
        assert_eq!(r.num("x-ratelimit-remaining"), 5000 - used as u64);
        assert_eq!(r.header("x-ratelimit-resource"), Some("graphql"));
    }
    let deep = gql_data(&fake, "t", &deep_query(40), json!({}));
    assert_eq!(deep["rateLimit"]["nodeCount"], 100 + 10_000 + 400_000);
    used += 101;

    // A dry run reports the cost, runs nothing and charges nothing.
    let dry = deep_query(40).replace("rateLimit {", "rateLimit(dryRun: true) { remaining");
    let r = gql(&fake, "t", &dry, json!({}));
    let data = r.json()["data"].clone();
    assert_eq!(data["rateLimit"]["cost"], 101);
    assert_eq!(data["rateLimit"]["remaining"], 5000 - used);
    assert!(data.get("repository").is_none(), "{data}");
    assert_eq!(r.num("x-ratelimit-used"), used as u64);
    let s = fake.stats();
    assert_eq!((s.graphql_points, s.graphql_queries), (used as u64, 9));
    assert_eq!(s.per_token["t"].graphql_points, used as u64);
    assert_eq!(s.counted_requests, 0, "no REST quota used");
}

#[test]
fn graphql_bucket_is_separate_from_rest_and_shared_by_an_account() {
    let pairs = [("a", "octo"), ("b", "octo"), ("c", "big")];
    let fake = FakeGithub::spawn(FakeConfig {
        limit: 10,
        graphql_limit: 3,
        window: Duration::from_secs(2),
        shared_accounts: pairs
            .iter()
            .map(|(t, l)| (t.to_string(), l.to_string()))
            .collect(),
        account_graphql_limits: HashMap::from([("big".to_string(), 7)]),
        ..widgets(5)
    });
    const Q: &str = "query { viewer { login } rateLimit { limit remaining used resetAt } }";
    let first = gql(&fake, "a", Q, json!({}));
    let data = first.json()["data"].clone();
    assert_eq!(data["viewer"]["login"], "octo");
    assert_eq!(
        data["rateLimit"],
        json!({"limit": 3, "remaining": 2, "used": 1,
        "resetAt": chrono::DateTime::from_timestamp(first.num("x-ratelimit-reset") as i64, 0)
            .unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()})
    );
    assert_eq!(first.header("x-ratelimit-resource"), Some("graphql"));
    assert_eq!(
        (
            first.num("x-ratelimit-limit"),
            first.num("x-ratelimit-remaining")
        ),
        (3, 2)
    );
    let reset_ms = first.num("x-ratelimit-reset-ms");
    assert!(
        first.num("x-ratelimit-reset") * 1000 >= reset_ms,
        "reset rounds up"
    );

    let rest = get(&fake, "/user", "a");
    assert_eq!(rest.header("x-ratelimit-resource"), Some("core"));
    assert_eq!(
        rest.num("x-ratelimit-remaining"),
        9,
        "REST has its own quota"
    );
    assert_eq!(
        gql(&fake, "b", Q, json!({})).num("x-ratelimit-remaining"),
        1,
        "b shares octo's points"
    );
    let limits = get(&fake, "/rate_limit", "b");
    assert_eq!(
        limits.num("x-ratelimit-remaining"),
        9,
        "REST answers report the REST bucket"
    );
    let v = limits.json();
    assert_eq!(v["resources"]["core"]["remaining"], 9);
    assert_eq!(v["rate"]["remaining"], 9);
    let g = &v["resources"]["graphql"];
    assert_eq!(
        (
            g["limit"].clone(),
            g["used"].clone(),
            g["remaining"].clone()
        ),
        (json!(3), json!(2), json!(1))
    );
    assert_eq!(g["reset"], reset_ms.div_ceil(1000));
    let big = gql(&fake, "c", Q, json!({}));
    assert_eq!(
        (
            big.num("x-ratelimit-limit"),
            big.num("x-ratelimit-remaining")
        ),
        (7, 6)
    );
    assert_eq!(
        gql(&fake, "d", Q, json!({})).num("x-ratelimit-remaining"),
        2,
        "d has its own account"
    );

    assert_eq!(
        gql(&fake, "b", Q, json!({})).num("x-ratelimit-remaining"),
        0
    );
    let refused = gql(&fake, "a", Q, json!({}));
    assert_eq!(gql_refusal(&refused)[0]["type"], "RATE_LIMITED");
    assert_eq!(get(&fake, "/user", "a").status, 200, "REST is unaffected");

    std::thread::sleep(Duration::from_millis(
        reset_ms.saturating_sub(now_ms()) + 20,
    ));
    let again = gql(&fake, "a", Q, json!({}));
    assert_eq!(again.status, 200);
    assert_eq!(
        again.num("x-ratelimit-remaining"),
        2,
        "a new window started"
    );
}

#[test]
fn rate_limited_comes_as_200_with_an_errors_entry() {
    let fake = FakeGithub::spawn(FakeConfig {
        graphql_limit: 3,
        ..widgets(100)
    });
    let costs_two = three_per_pr(82);
    let costs_one = three_per_pr(1);
    assert_eq!(
        gql(&fake, "t", &costs_two, json!({})).num("x-ratelimit-remaining"),
        1
    );
    let refused = gql(&fake, "t", &costs_two, json!({}));
    let errors = gql_refusal(&refused);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["type"], "RATE_LIMITED");
    assert_eq!(errors[0]["code"], "graphql_rate_limit");
    let message = errors[0]["message"].as_str().unwrap();
    let id = message
        .strip_prefix("API rate limit exceeded for user ID ")
        .and_then(|m| m.strip_suffix('.'))
        .unwrap_or_else(|| panic!("{message}"));
    assert!(id.parse::<u64>().is_ok(), "{message}");
    assert_eq!(refused.num("x-ratelimit-remaining"), 1, "what is left");
    assert_eq!(refused.num("x-ratelimit-used"), 2, "nothing charged");
    assert_eq!(gql(&fake, "t", &costs_one, json!({})).status, 200);
    let at_zero = gql(&fake, "t", &costs_one, json!({}));
    assert_eq!(gql_refusal(&at_zero)[0]["type"], "RATE_LIMITED");
    assert_eq!(at_zero.num("x-ratelimit-remaining"), 0);
    let s = fake.stats();
    assert_eq!(
        (s.graphql_queries, s.graphql_points, s.graphql_refused),
        (4, 3, 2)
    );
    assert_eq!(
        (s.per_token["t"].graphql_refused, s.per_token["t"].refused),
        (2, 0)
    );
    assert_eq!(s.refused_for_quota, 0, "REST refusals are counted apart");
    let log = fake.requests_log();
    assert_eq!(log.len(), 4);
    assert!(log
        .iter()
        .all(|r| r.graphql && r.method == "POST" && r.path == "/graphql" && !r.counted));
    assert_eq!(
        log.iter().map(|r| r.points).collect::<Vec<_>>(),
        vec![2, 0, 1, 0]
    );
    assert_eq!(log[1].outcome, Outcome::RefusedForQuota);
    assert_eq!(log[1].status, 200);
}

#[test]
fn heavy_queries_time_out_with_502_and_are_charged() {
    let fake = FakeGithub::spawn(FakeConfig {
        graphql_timeout_weight: Some(500),
        ..widgets(10)
    });
    let files = r#"query ($first: Int!) { repository(owner: "acme", name: "widgets") { pullRequest(number: 5) { files(first: $first) { nodes { path } } } } }"#;
    // One PR and 100 files weighing 10 each: 1,001.
    let heavy = gql(&fake, "t", files, json!({"first": 100}));
    assert_eq!(heavy.status, 502);
    assert_eq!(heavy.header("x-ratelimit-resource"), Some("graphql"));
    assert_eq!(heavy.num("x-ratelimit-used"), 1, "charged all the same");
    let v = heavy.json();
    assert_eq!(v["data"], Value::Null);
    let request_id = heavy.header("x-github-request-id").unwrap();
    let message = v["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "Something went wrong while executing your query. This may be the result of a timeout"
        ),
        "{message}"
    );
    assert!(message.contains(&format!("`{request_id}`")), "{message}");
    // 1 + 40 * 10 = 401.
    let light = gql(&fake, "t", files, json!({"first": 40}));
    assert_eq!(light.status, 200);
    assert_eq!(
        light.json()["data"]["repository"]["pullRequest"]["files"]["nodes"]
            .as_array()
            .unwrap()
            .len(),
        40
    );
    let s = fake.stats();
    assert_eq!((s.graphql_timeouts, s.graphql_points), (2 - 1, 2));
    assert_eq!(s.per_token["t"].graphql_timeouts, 1);
    assert_eq!(
        s.graphql_items_served.get("acme/widgets#5:files:0"),
        Some(&1),
        "the 502 served no page"
    );
    let log = fake.requests_log();
    assert_eq!(
        (log[0].outcome, log[0].status, log[0].points),
        (Outcome::TimedOut, 502, 1)
    );

    let light_files = FakeGithub::spawn(FakeConfig {
        graphql_timeout_weight: Some(500),
        graphql_file_weight: 1,
        ..widgets(10)
    });
    assert_eq!(
        gql(&light_files, "t", files, json!({"first": 100})).status,
        200
    );
}

#[test]
fn pagination_and_node_limits_are_enforced() {
    let fake = FakeGithub::spawn(widgets(10));
    let files = |args: &str| {
        format!(
            r#"{{ repository(owner: "acme", name: "widgets") {{ pullRequest(number: 5) {{ files{args} {{ nodes {{ path }} }} }} }} }}"#
        )
    };
    // The one error of a query refused before it runs, for free.
    let only = |query: &str, variables: Value| {
        let points = fake.stats().graphql_points;
        let r = gql(&fake, "t", query, variables);
        let errors = gql_refusal(&r);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(
            r.num("x-ratelimit-used"),
            points,
            "refused queries cost nothing"
        );
        assert_eq!(fake.stats().graphql_points, points);
        errors[0].clone()
    };
    let e = only(&files(""), json!({}));
    assert_eq!(e["type"], "MISSING_PAGINATION_BOUNDARIES");
    assert_eq!(
        e["message"],
        "You must provide a `first` or `last` value to properly paginate the `files` connection."
    );
    assert_eq!(e["path"], json!(["repository", "pullRequest", "files"]));
    let e = only(&files("(first: 101)"), json!({}));
    assert_eq!(e["type"], "EXCESSIVE_PAGINATION");
    assert_eq!(e["message"], "Requesting 101 records on the `files` connection exceeds the `first` limit of 100 records.");
    let e = only(&files("(last: 0)"), json!({}));
    assert_eq!(e["type"], "EXCESSIVE_PAGINATION");
    let by_variable = files("(first: $n)").replacen('{', "query ($n: Int) {", 1);
    let e = only(&by_variable, json!({"n": 500}));
    assert_eq!(e["type"], "EXCESSIVE_PAGINATION");
    let e = only(&by_variable, json!({"n": null}));
    assert_eq!(e["type"], "MISSING_PAGINATION_BOUNDARIES");
    assert_eq!(gql(&fake, "t", &by_variable, json!({"n": 100})).status, 200);

    let e = only(&deep_query(100), json!({}));
    assert_eq!(e["type"], "MAX_NODE_LIMIT_EXCEEDED");
    assert_eq!(e["message"], "By the time this query traverses to the contexts connection, it is requesting up to 1,010,100 possible nodes which exceeds the maximum limit of 500,000.");
    assert_eq!(
        gql(&fake, "t", &deep_query(40), json!({})).status,
        200,
        "410,100 nodes pass"
    );

    let e = only(
        r#"{ repository(owner: "acme", name: "widgets") { pullRequest(number: 1) { nope } } }"#,
        json!({}),
    );
    assert_eq!(
        e["message"],
        "Field 'nope' doesn't exist on type 'PullRequest'"
    );
    assert_eq!(e["extensions"]["code"], "undefinedField");
    let e = only(
        r#"{ repository(owner: "acme", name: "widgets") { pullRequest(number: 1) { files(first: 1, sort: UP) { totalCount } } } }"#,
        json!({}),
    );
    assert_eq!(e["extensions"]["code"], "argumentNotAccepted");
    let e = only("{ repository(owner: \"acme\") { id } }", json!({}));
    assert_eq!(e["extensions"]["code"], "missingRequiredArguments");
    let s = fake.stats();
    assert_eq!((s.graphql_points, s.graphql_queries), (1 + 101, 11));
}

#[test]
fn a_server_without_graphql_answers_404() {
    let fake = FakeGithub::spawn(FakeConfig {
        graphql: false,
        limit: 10,
        ..widgets(5)
    });
    for path in ["/graphql", "/api/graphql"] {
        let r = gql_at(&fake, path, "t", "{ viewer { login } }", json!({}));
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.json()["message"], "Not Found");
    }
    assert_eq!(
        get(&fake, "/user", "t").num("x-ratelimit-remaining"),
        9,
        "the 404s cost nothing"
    );
    let s = fake.stats();
    assert_eq!((s.counted_requests, s.graphql_points), (1, 0));

    // With GraphQL, the GitHub Enterprise Server form answers too.
    let ghes = FakeGithub::spawn(widgets(5));
    let r = gql_at(
        &ghes,
        "/api/graphql",
        "t",
        "{ viewer { login } }",
        json!({}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["data"]["viewer"]["login"],
        default_account("t").as_str()
    );
}

#[test]
fn bot_logins_lack_the_bot_suffix_and_deleted_authors_are_null() {
    let fake = FakeGithub::spawn(widgets(45));
    let truth = fake.truth("acme/widgets");
    let by = |author: Option<&str>| {
        truth
            .per_pr
            .iter()
            .find(|p| p.author.as_deref() == author)
            .unwrap()
            .number
    };
    let query = r#"query ($n: Int!) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { author { __typename login } commits(first: 100) { nodes { commit { author { email user { __typename login } } } } } } } }"#;
    let pull =
        |n: u64| gql_data(&fake, "t", query, json!({"n": n}))["repository"]["pullRequest"].clone();

    let bot_pr = by(Some("dependabot[bot]"));
    let p = pull(bot_pr);
    assert_eq!(
        p["author"],
        json!({"__typename": "Bot", "login": "dependabot"})
    );
    let rest = all_items(
        &fake,
        &format!("/repos/acme/widgets/pulls/{bot_pr}/commits?per_page=100"),
        "t",
    );
    let mut bot_commits = 0;
    for (c, r) in p["commits"]["nodes"].as_array().unwrap().iter().zip(&rest) {
        let author = &c["commit"]["author"];
        assert_eq!(author["email"], r["commit"]["author"]["email"]);
        if r["author"]["type"] == "Bot" {
            bot_commits += 1;
            assert_eq!(
                author["user"],
                Value::Null,
                "GitActor.user is a User; a bot is not one"
            );
        } else if r["author"].is_null() {
            assert_eq!(author["user"], Value::Null);
        } else {
            assert_eq!(
                author["user"],
                json!({"__typename": "User", "login": r["author"]["login"]})
            );
        }
    }
    assert!(bot_commits > 0);

    assert_eq!(pull(7)["author"], Value::Null, "deleted account");
    assert_eq!(
        get(&fake, "/repos/acme/widgets/pulls/7", "t").json()["user"],
        Value::Null
    );
    let user_pr = truth
        .per_pr
        .iter()
        .find(|p| p.author.as_deref().is_some_and(|a| !a.ends_with("[bot]")))
        .unwrap();
    assert_eq!(
        pull(user_pr.number)["author"],
        json!({"__typename": "User", "login": user_pr.author.as_deref().unwrap()})
    );
}

#[test]
fn cursors_continue_where_rest_pages_do() {
    let fake = FakeGithub::spawn(widgets(250));
    let files = r#"query ($after: String, $before: String, $first: Int, $last: Int) { repository(owner: "acme", name: "widgets") { pullRequest(number: 5) { files(first: $first, last: $last, after: $after, before: $before) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { path } } } } } }"#;
    let page = |vars: Value| {
        gql_data(&fake, "t", files, vars)["repository"]["pullRequest"]["files"].clone()
    };
    let paths = |conn: &Value| {
        conn["edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["node"]["path"].clone())
            .collect::<Vec<_>>()
    };
    let rest_paths = |page: u32| {
        get(
            &fake,
            &format!("/repos/acme/widgets/pulls/5/files?per_page=100&page={page}"),
            "t",
        )
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].clone())
        .collect::<Vec<_>>()
    };

    let one = page(json!({"first": 100}));
    assert_eq!(one["totalCount"], 150);
    assert_eq!(paths(&one), rest_paths(1));
    assert_eq!(one["pageInfo"]["hasNextPage"], true);
    assert_eq!(one["pageInfo"]["hasPreviousPage"], false);
    assert_eq!(one["pageInfo"]["endCursor"], one["edges"][99]["cursor"]);
    let two = page(json!({"first": 100, "after": one["pageInfo"]["endCursor"]}));
    assert_eq!(paths(&two), rest_paths(2), "page 2 of REST");
    assert_eq!(
        (
            two["pageInfo"]["hasNextPage"].clone(),
            two["pageInfo"]["hasPreviousPage"].clone()
        ),
        (json!(false), json!(true))
    );
    let tail = page(json!({"last": 10}));
    assert_eq!(paths(&tail), rest_paths(2)[40..].to_vec());
    let before = page(json!({"last": 5, "before": one["edges"][10]["cursor"]}));
    assert_eq!(paths(&before), rest_paths(1)[5..10].to_vec());

    // PR 3: 300 commits, 250 served, in REST's pages.
    let commits = r#"query ($after: String) { repository(owner: "acme", name: "widgets") { pullRequest(number: 3) { commits(first: 100, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { commit { oid } } } } } }"#;
    let oids: Vec<Value> = gql_nodes(&fake, commits, json!({}), "/repository/pullRequest/commits")
        .iter()
        .map(|c| c["commit"]["oid"].clone())
        .collect();
    let rest_oids: Vec<Value> = all_items(
        &fake,
        "/repos/acme/widgets/pulls/3/commits?per_page=100",
        "t",
    )
    .iter()
    .map(|c| c["sha"].clone())
    .collect();
    assert_eq!(oids.len(), 250);
    assert_eq!(oids, rest_oids);

    // The PR list: newest first like REST's default, and oldest first without orderBy.
    let list = [LIST_QUERY, PULL_FRAGMENT].concat();
    let vars = |after: Value| json!({"owner": "acme", "name": "widgets", "first": 100, "after": after, "order": "CREATED_AT"});
    let first = gql_data(&fake, "t", &list, vars(Value::Null));
    let end = first["repository"]["pullRequests"]["pageInfo"]["endCursor"].clone();
    let second = gql_data(&fake, "t", &list, vars(end));
    let numbers: Vec<Value> = second["repository"]["pullRequests"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].clone())
        .collect();
    let rest: Vec<Value> = get(
        &fake,
        "/repos/acme/widgets/pulls?state=all&per_page=100&page=2",
        "t",
    )
    .json()
    .as_array()
    .unwrap()
    .iter()
    .map(|p| p["number"].clone())
    .collect();
    assert_eq!(numbers, rest);
    let oldest = gql_data(
        &fake,
        "t",
        r#"{ repository(owner: "acme", name: "widgets") { pullRequests(first: 3) { nodes { number } } } }"#,
        json!({}),
    );
    assert_eq!(
        oldest["repository"]["pullRequests"]["nodes"],
        json!([{"number": 1}, {"number": 2}, {"number": 3}])
    );

    // A cursor that is not one: an error at the connection, the rest of the data intact.
    let r = gql(&fake, "t", files, json!({"first": 10, "after": "bogus"}));
    let v = r.json();
    assert_eq!(r.status, 200);
    assert_eq!(v["errors"][0]["type"], "INVALID_CURSOR_ARGUMENTS");
    assert_eq!(
        v["errors"][0]["message"],
        "`bogus` does not appear to be a valid cursor."
    );
    assert_eq!(
        v["errors"][0]["path"],
        json!(["repository", "pullRequest", "files"])
    );
    assert_eq!(
        v["data"]["repository"]["pullRequest"],
        json!({"files": null})
    );

    let s = fake.stats();
    assert_eq!(s.graphql_items_served["acme/widgets#5:files:100"], 1);
    assert_eq!(s.graphql_items_served["acme/widgets#3:commits:200"], 1);
    assert_eq!(s.graphql_items_served["acme/widgets:pullRequests:100"], 1);
    assert!(
        s.pages_served.keys().all(|p| !p.contains("graphql")),
        "GraphQL is not in pages_served"
    );
}

#[test]
fn seedqs_example_queries_are_answered_exactly() {
    let fake = FakeGithub::spawn(widgets(120));
    let truth = fake.truth("acme/widgets");
    let list = [LIST_QUERY, PULL_FRAGMENT].concat();
    let vars = json!({"owner": "acme", "name": "widgets", "first": 100, "after": null, "states": null, "order": "CREATED_AT"});
    let data = gql_data(&fake, "t", &list, vars);
    assert_eq!(data["rateLimit"]["cost"], 1);
    let conn = &data["repository"]["pullRequests"];
    assert_eq!(conn["pageInfo"]["hasNextPage"], true);
    let nodes = conn["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 100);
    assert_eq!(nodes[0]["number"], 120);
    let keys: Vec<&String> = nodes[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 15, "exactly the fragment's fields: {keys:?}");
    let open = truth.per_pr.iter().filter(|p| p.state == "open").count();
    let vars = json!({"owner": "acme", "name": "widgets", "first": 100, "states": ["OPEN"], "order": "UPDATED_AT"});
    let data = gql_data(&fake, "t", &list, vars);
    let open_nodes = data["repository"]["pullRequests"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(open_nodes.len(), open);
    assert!(open_nodes.iter().all(|p| p["state"] == "OPEN"));
    assert!(open_nodes
        .windows(2)
        .all(|w| w[0]["updatedAt"].as_str() >= w[1]["updatedAt"].as_str()));
    let merged = gql_nodes(
        &fake,
        &list,
        json!({"owner": "acme", "name": "widgets", "first": 100, "states": ["MERGED"], "order": "CREATED_AT"}),
        "/repository/pullRequests",
    );
    assert_eq!(
        merged.len(),
        truth.per_pr.iter().filter(|p| p.merged).count()
    );

    let pr12 = &truth.per_pr[11];
    let batch_vars = json!({"owner": "acme", "name": "widgets", "after0": null});
    for head in [
        "0123456789abcdef0123456789abcdef01234567",
        pr12.head_sha.as_str(),
    ] {
        let batch = [
            BATCH_QUERY.replace("HEAD_OID", head).as_str(),
            PULL_FRAGMENT,
        ]
        .concat();
        let data = gql_data(&fake, "t", &batch, batch_vars.clone());
        assert_eq!(data["rateLimit"]["cost"], 1);
        let repo = &data["repository"];
        assert_eq!(
            repo.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["head12", "pr12", "pr5"]
        );
        assert_eq!(repo["pr12"]["number"], 12);
        assert_eq!(
            repo["pr12"]["commits"]["nodes"].as_array().unwrap().len() as u64,
            pr12.commits
        );
        assert_eq!(
            repo["pr12"]["reviews"]["nodes"].as_array().unwrap().len() as u64,
            pr12.reviews
        );
        assert_eq!(
            repo["pr12"]["comments"]["nodes"].as_array().unwrap().len() as u64,
            pr12.issue_comments
        );
        assert_eq!(repo["pr5"]["files"]["nodes"].as_array().unwrap().len(), 100);
        assert_eq!(repo["pr5"]["files"]["pageInfo"]["hasNextPage"], true);
        let runs = repo["head12"]["statusCheckRollup"]["contexts"]["nodes"]
            .as_array()
            .map_or(0, |n| {
                n.iter().filter(|c| c["__typename"] == "CheckRun").count()
            });
        let expected = if head == pr12.head_sha {
            pr12.check_runs
        } else {
            0
        };
        assert_eq!(runs as u64, expected);
        if head != pr12.head_sha {
            assert_eq!(
                repo["head12"],
                Value::Null,
                "an unknown oid is null, without an error"
            );
        }
    }

    // Fragments on connection types (as seedq's batches spread them), and node ids.
    let node_id = get(&fake, "/repos/acme/widgets/pulls/5", "t").json()["node_id"].clone();
    let q = r#"query ($id: ID!) { node(id: $id) { __typename ... on PullRequest { number files(first: 2) { ...files } } } }
        fragment files on PullRequestChangedFileConnection { totalCount nodes { path } }"#;
    let data = gql_data(&fake, "t", q, json!({"id": node_id}));
    assert_eq!(data["node"]["__typename"], "PullRequest");
    assert_eq!(data["node"]["number"], 5);
    assert_eq!(data["node"]["files"]["totalCount"], 150);
    assert_eq!(data["node"]["files"]["nodes"].as_array().unwrap().len(), 2);

    // Partial errors: the missing PR is null at its alias, with an error naming its path.
    let partial = r#"{ repository(owner: "acme", name: "widgets") { pr1: pullRequest(number: 1) { number } pr999: pullRequest(number: 999) { number } } }"#;
    let r = gql(&fake, "t", partial, json!({}));
    let v = r.json();
    assert_eq!(r.status, 200);
    assert_eq!(
        v["data"],
        json!({"repository": {"pr1": {"number": 1}, "pr999": null}})
    );
    assert_eq!(v["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(v["errors"][0]["path"], json!(["repository", "pr999"]));
    assert_eq!(
        v["errors"][0]["message"],
        "Could not resolve to a PullRequest with the number of 999."
    );
    assert_eq!(v["errors"][0]["locations"][0]["line"], 1);
    let r = gql(
        &fake,
        "t",
        r#"{ repository(owner: "acme", name: "nope") { id } }"#,
        json!({}),
    );
    let v = r.json();
    assert_eq!(v["data"], json!({"repository": null}));
    assert_eq!(
        v["errors"][0]["message"],
        "Could not resolve to a Repository with the name 'acme/nope'."
    );
}

#[test]
fn graphql_shares_rests_authentication_faults_and_penalties() {
    let mut cfg = widgets(5);
    cfg.invalid_tokens.insert("bad".into());
    cfg.repo_errors.insert("acme/secret".into(), 403);
    cfg.repo_errors.insert("acme/gone".into(), 410);
    cfg.renamed_repos
        .insert("old/widgets".into(), "acme/widgets".into());
    let fake = FakeGithub::spawn(cfg);
    const Q: &str = "{ viewer { login } }";
    let bad = gql(&fake, "bad", Q, json!({}));
    assert_eq!(
        (bad.status, bad.json()["message"].clone()),
        (401, json!("Bad credentials"))
    );
    let body = serde_json::to_vec(&json!({"query": Q})).unwrap();
    assert_eq!(
        request_with_body(&fake, "POST", "/graphql", &[], &body).status,
        401
    );

    let repo = |owner: &str, follow: bool| {
        let q = format!(
            r#"{{ repository(owner: "{owner}", name: "{}", followRenames: {follow}) {{ nameWithOwner }} }}"#,
            if owner == "old" { "widgets" } else { "x" }
        );
        gql(&fake, "t", &q, json!({})).json()
    };
    let forbidden = repo("acme/secret".split('/').next().unwrap(), true);
    assert_eq!(forbidden["data"]["repository"], Value::Null);
    let q = |name: &str| format!(r#"{{ repository(owner: "acme", name: "{name}") {{ id }} }}"#);
    let v = gql(&fake, "t", &q("secret"), json!({})).json();
    assert_eq!(
        (
            v["errors"][0]["type"].clone(),
            v["errors"][0]["message"].clone()
        ),
        (
            json!("FORBIDDEN"),
            json!("Resource not accessible by personal access token")
        )
    );
    let v = gql(&fake, "t", &q("gone"), json!({})).json();
    assert_eq!(v["errors"][0]["type"], "NOT_FOUND");
    assert_eq!(
        repo("old", true)["data"]["repository"]["nameWithOwner"],
        "acme/widgets",
        "renames are followed"
    );
    assert_eq!(repo("old", false)["errors"][0]["type"], "NOT_FOUND");

    let broken = gql(&fake, "t", "{ repository(owner: ", json!({}));
    let message = gql_refusal(&broken)[0]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.starts_with("Parse error"), "{message}");
    let auth = [("Authorization", "token t")];
    let not_json = request_with_body(&fake, "POST", "/graphql", &auth, b"{nope");
    assert_eq!(
        gql_refusal(&not_json)[0]["message"],
        "Problems parsing JSON"
    );
    let get_graphql = get(&fake, "/graphql", "t");
    assert_eq!(get_graphql.status, 200);
    assert!(get_graphql.json()["errors"][0]["message"].is_string());
    let mutation = gql(
        &fake,
        "t",
        "mutation { addStar(input: {starrableId: \"x\"}) { clientMutationId } }",
        json!({}),
    );
    assert_eq!(
        gql_refusal(&mutation)[0]["message"],
        "Field 'addStar' doesn't exist on type 'Mutation'"
    );

    fake.set_faults(Faults {
        p_server_error: 1.0,
        ..Faults::default()
    });
    let r = gql(&fake, "t", Q, json!({}));
    assert!(r.status == 502 || r.status == 503);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    fake.set_faults(Faults {
        p_secondary: 1.0,
        secondary_retry_after: Some(1),
        ..Faults::default()
    });
    let r = gql(&fake, "t", Q, json!({}));
    assert_eq!(r.status, 403);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-ratelimit-resource"), Some("graphql"));
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("You have exceeded a secondary rate limit"));
    fake.set_faults(Faults::default());
    assert_eq!(
        get(&fake, "/user", "t").status,
        403,
        "the penalty holds for REST too"
    );
    assert_eq!(gql(&fake, "t", Q, json!({})).status, 403);
    assert_eq!(gql(&fake, "other", Q, json!({})).status, 200);
    std::thread::sleep(Duration::from_millis(1050));
    assert_eq!(gql(&fake, "t", Q, json!({})).status, 200);
    let s = fake.stats();
    assert_eq!(
        (
            s.secondary_injected,
            s.sent_during_secondary_penalty,
            s.server_errors_injected
        ),
        (1, 2, 1)
    );
}

#[test]
fn the_fakes_schema_is_githubs() {
    use apollo_compiler::validation::Valid;
    use apollo_compiler::{ExecutableDocument, Schema};
    use fake_github::graphql::schema;

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/github/schema.graphql");
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: no GitHub schema at {}", path.display());
        return;
    };
    // GitHub's schema has two duplicate fields apollo-compiler reports; the rest is sound.
    let schema =
        Valid::assume_valid(Schema::parse(text, "schema.graphql").unwrap_or_else(|e| e.partial));
    for def in schema::FIELDS {
        let field = schema
            .type_field(def.parent, def.name)
            .unwrap_or_else(|_| panic!("GitHub has no {}.{}", def.parent, def.name));
        assert_eq!(
            field.ty.to_string(),
            def.ty,
            "type of {}.{}",
            def.parent,
            def.name
        );
        for (arg, required) in def.arguments() {
            let a = field
                .arguments
                .iter()
                .find(|a| a.name == arg)
                .unwrap_or_else(|| panic!("{}.{} takes no {arg}", def.parent, def.name));
            assert_eq!(
                a.is_required(),
                required,
                "{}.{}({arg})",
                def.parent,
                def.name
            );
        }
    }
    for (abstract_type, members) in schema::ABSTRACT {
        for member in *members {
            assert!(
                schema.is_subtype(abstract_type, member),
                "{member} is not a {abstract_type}"
            );
        }
    }
    for leaf in schema::LEAVES {
        assert!(schema.types[*leaf].is_leaf(), "{leaf}");
    }
    let queries = [
        [LIST_QUERY, PULL_FRAGMENT].concat(),
        [BATCH_QUERY, PULL_FRAGMENT]
            .concat()
            .replace("HEAD_OID", "0123456789abcdef0123456789abcdef01234567"),
        PR_COMMITS.into(),
        PR_REVIEWS.into(),
        PR_FILES.into(),
        PR_COMMENTS.into(),
        PR_CONTEXTS.into(),
        three_per_pr(3),
        deep_query(3),
        FIRST_PAGES.into(),
        PR_TOTALS.into(),
    ];
    for q in queries {
        ExecutableDocument::parse_and_validate(&schema, q.as_str(), "query.graphql")
            .unwrap_or_else(|e| panic!("{}\n{q}", e.errors));
    }
}

// --- Heavy PRs ---------------------------------------------------------------------------

/// One PR's first page of each list, as a batch asks for it; weighs 1 (the PR) + its items,
/// a file weighing `graphql_file_weight`.
const FIRST_PAGES: &str = r#"query ($n: Int!) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { commits(first: 100) { nodes { commit { oid } } } reviews(first: 100) { nodes { databaseId } } files(first: 100) { nodes { path } } comments(first: 100) { nodes { databaseId } } statusCheckRollup { contexts(first: 100) { nodes { __typename } } } } } }"#;

/// A PR's totals as GraphQL counts them.
const PR_TOTALS: &str = r#"query ($n: Int!) { repository(owner: "acme", name: "widgets") { pullRequest(number: $n) { changedFiles additions deletions headRefOid commits(first: 1) { totalCount } reviews(first: 1) { totalCount } files(first: 1) { totalCount } comments(first: 1) { totalCount } statusCheckRollup { contexts(first: 1) { checkRunCount } } } } }"#;

/// acme/widgets with 20 PRs, a quarter of them heavy: #8, #9, #17 and #18.
fn heavy_widgets() -> FakeConfig {
    FakeConfig {
        repos: vec![RepoSpec::new("acme/widgets", 20).heavy(25)],
        ..FakeConfig::default()
    }
}

/// The values at `pointers` in each item, as text: REST's numeric ids and GraphQL's BigInt
/// strings compare equal.
fn keys(items: &[Value], pointers: &[&str]) -> Vec<String> {
    let text = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => "null".to_string(),
    };
    items
        .iter()
        .map(|item| {
            let values: Vec<String> = pointers.iter().map(|p| text(item.pointer(p))).collect();
            values.join(" ")
        })
        .collect()
}

/// Whether a PR is heavy, from its truth: light PRs past #7 have at most 10 files.
fn is_heavy(pr: &fake_github::PrTruth) -> bool {
    pr.number > 7 && pr.changed_files >= *heavy::FILES.start()
}

#[test]
fn repositories_without_heavy_prs_are_unchanged() {
    assert_eq!(
        RepoSpec::new("acme/widgets", 20).heavy(0),
        RepoSpec::new("acme/widgets", 20)
    );
    let fake = FakeGithub::spawn(widgets(20));
    let truth = fake.truth("acme/widgets");
    // Pinned from the generator before heavy PRs existed.
    let prs = &truth.per_pr[7..12];
    let shapes: Vec<String> = prs
        .iter()
        .map(|p| {
            format!(
                "#{}: {} files, {} commits, {} reviews, {} runs, {}+{} comments, +{}-{}",
                p.number,
                p.files,
                p.commits_total,
                p.reviews,
                p.check_runs,
                p.review_comments,
                p.issue_comments,
                p.additions,
                p.deletions
            )
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "#8: 7 files, 2 commits, 4 reviews, 4 runs, 0+1 comments, +307-94",
            "#9: 2 files, 1 commits, 0 reviews, 0 runs, 2+1 comments, +74-41",
            "#10: 6 files, 1 commits, 1 reviews, 0 runs, 2+0 comments, +308-88",
            "#11: 9 files, 4 commits, 0 reviews, 3 runs, 3+2 comments, +319-171",
            "#12: 7 files, 7 commits, 4 reviews, 3 runs, 2+1 comments, +283-70",
        ]
    );
    let heads: Vec<&str> = prs.iter().map(|p| p.head_sha.as_str()).collect();
    assert_eq!(
        heads,
        [
            "41e278bdb178b8c888b8c1bb0000000100000008",
            "6209032f147b26ddfcac3fa60000000000000009",
            "ea7fa89381be0538b1ba1617000000000000000a",
            "dbe2ac1455de047322a7bfad000000030000000b",
            "b1de16cf775911171afa6920000000060000000c",
        ]
    );
    assert_eq!(
        (
            truth.commits,
            truth.reviews,
            truth.files,
            truth.check_runs,
            truth.review_comments,
            truth.issue_comments
        ),
        (436, 41, 253, 45, 29, 31)
    );
}

#[test]
fn about_heavy_percent_of_prs_past_7_are_heavy_and_the_others_are_unchanged() {
    let fake = FakeGithub::spawn(FakeConfig {
        repos: vec![
            RepoSpec::new("acme/widgets", 2000).heavy(10),
            RepoSpec::new("acme/all", 30).heavy(100),
        ],
        ..FakeConfig::default()
    });
    let truth = fake.truth("acme/widgets");
    let heavy_prs: Vec<_> = truth.per_pr.iter().filter(|p| is_heavy(p)).collect();
    assert!(
        (150..=250).contains(&heavy_prs.len()),
        "{} heavy",
        heavy_prs.len()
    );
    // Each count spreads over its whole range, evenly.
    let counts = |count: fn(&fake_github::PrTruth) -> u64| -> Vec<u64> {
        heavy_prs.iter().map(|p| count(p)).collect()
    };
    let spreads = [
        ("files", heavy::FILES, counts(|p| p.files)),
        ("commits", heavy::COMMITS, counts(|p| p.commits)),
        ("reviews", heavy::REVIEWS, counts(|p| p.reviews)),
        ("check runs", heavy::CHECK_RUNS, counts(|p| p.check_runs)),
        (
            "review comments",
            heavy::COMMENTS,
            counts(|p| p.review_comments),
        ),
        (
            "issue comments",
            heavy::COMMENTS,
            counts(|p| p.issue_comments),
        ),
    ];
    for (what, range, values) in spreads {
        let (low, high) = (*range.start(), *range.end());
        let tenth = (high - low) / 10;
        let (min, max) = (*values.iter().min().unwrap(), *values.iter().max().unwrap());
        let mean = values.iter().sum::<u64>() / values.len() as u64;
        assert!(min >= low && min <= low + tenth, "{what}: min {min}");
        assert!(max <= high && max >= high - tenth, "{what}: max {max}");
        assert!(
            mean.abs_diff((low + high) / 2) <= tenth,
            "{what}: mean {mean}"
        );
    }
    assert!(
        heavy_prs.iter().filter(|p| p.commits > 100).count() > heavy_prs.len() / 2,
        "most heavy PRs have a second page of commits"
    );
    // At 100 %, every PR past #7 is heavy; #1-#7 keep their shapes, and a heavy PR is the
    // light one's title, dates and author with more items.
    let all = fake.truth("acme/all").per_pr;
    let light = FakeGithub::spawn(FakeConfig {
        repos: vec![RepoSpec::new("acme/all", 30)],
        ..FakeConfig::default()
    })
    .truth("acme/all")
    .per_pr;
    assert_eq!(all[..7], light[..7]);
    for (heavy_pr, light_pr) in all[7..].iter().zip(&light[7..]) {
        assert!(is_heavy(heavy_pr), "#{}", heavy_pr.number);
        let scalars = |p: &fake_github::PrTruth| {
            (
                p.title.clone(),
                p.state.clone(),
                p.merged,
                p.created_at.clone(),
                p.updated_at.clone(),
                p.author.clone(),
            )
        };
        assert_eq!(scalars(heavy_pr), scalars(light_pr));
    }
}

#[test]
fn heavy_repositories_have_large_prs_and_rest_and_graphql_agree_on_them() {
    let fake = FakeGithub::spawn(heavy_widgets());
    let truth = assert_pages_serve_truth(&fake, "acme/widgets");
    let heavy_prs: Vec<u64> = truth
        .per_pr
        .iter()
        .filter(|p| is_heavy(p))
        .map(|p| p.number)
        .collect();
    assert_eq!(heavy_prs, [8, 9, 17, 18]);
    // The light PRs are those of a repository without heavy PRs.
    let plain = FakeGithub::spawn(widgets(20)).truth("acme/widgets");
    for (pr, plain_pr) in truth.per_pr.iter().zip(&plain.per_pr) {
        assert_eq!(is_heavy(pr), pr != plain_pr, "#{}", pr.number);
    }
    assert!(truth.per_pr[7].commits > 200 && truth.per_pr[8].files > 700);

    for &n in &heavy_prs {
        let pr = &truth.per_pr[n as usize - 1];
        let vars = json!({"n": n});
        let totals =
            gql_data(&fake, "t", PR_TOTALS, vars.clone())["repository"]["pullRequest"].clone();
        assert_eq!(
            json!([
                totals["changedFiles"],
                totals["additions"],
                totals["deletions"],
                totals["headRefOid"],
                totals["commits"]["totalCount"],
                totals["reviews"]["totalCount"],
                totals["files"]["totalCount"],
                totals["comments"]["totalCount"],
                totals["statusCheckRollup"]["contexts"]["checkRunCount"]
            ]),
            json!([
                pr.changed_files,
                pr.additions,
                pr.deletions,
                pr.head_sha,
                pr.commits,
                pr.reviews,
                pr.files,
                pr.issue_comments,
                pr.check_runs
            ]),
            "totals of #{n}"
        );

        // Every item of every GraphQL page is REST's, in REST's order.
        let base = format!("/repos/acme/widgets/pulls/{n}");
        let rest = |path: &str, pointers: &[&str]| keys(&all_items(&fake, path, "t"), pointers);
        let graphql = |query: &str, connection: &str, pointers: &[&str]| {
            keys(&gql_nodes(&fake, query, vars.clone(), connection), pointers)
        };
        let commits = rest(&format!("{base}/commits?per_page=100"), &["/sha"]);
        assert_eq!(commits.len() as u64, pr.commits);
        assert_eq!(
            graphql(
                PR_COMMITS,
                "/repository/pullRequest/commits",
                &["/commit/oid"]
            ),
            commits,
            "commits of #{n}"
        );
        let files = rest(
            &format!("{base}/files?per_page=100"),
            &["/filename", "/additions", "/deletions"],
        );
        assert_eq!(files.len() as u64, pr.files);
        assert_eq!(
            graphql(
                PR_FILES,
                "/repository/pullRequest/files",
                &["/path", "/additions", "/deletions"]
            ),
            files,
            "files of #{n}"
        );
        assert_eq!(
            graphql(
                PR_REVIEWS,
                "/repository/pullRequest/reviews",
                &["/fullDatabaseId"]
            ),
            rest(&format!("{base}/reviews?per_page=100"), &["/id"]),
            "reviews of #{n}"
        );
        assert_eq!(
            graphql(
                PR_COMMENTS,
                "/repository/pullRequest/comments",
                &["/fullDatabaseId"]
            ),
            rest(
                &format!("/repos/acme/widgets/issues/{n}/comments?per_page=100"),
                &["/id"]
            ),
            "issue comments of #{n}"
        );
        let mut contexts = graphql(
            PR_CONTEXTS,
            "/repository/pullRequest/statusCheckRollup/contexts",
            &["/databaseId"],
        );
        contexts.retain(|id| id != "null"); // the commit status, which REST does not list
        assert_eq!(
            contexts,
            rest(
                &format!(
                    "/repos/acme/widgets/commits/{}/check-runs?per_page=100",
                    pr.head_sha
                ),
                &["/id"]
            ),
            "check runs of #{n}"
        );
    }
    // Past 100, the GraphQL pages continued: #9's files came in pages of 100.
    let served = fake.stats().graphql_items_served;
    let pages = truth.per_pr[8].files.div_ceil(100);
    for page in 0..pages {
        let key = format!("acme/widgets#9:files:{}", page * 100);
        assert!(served.contains_key(&key), "{key}");
    }
    assert!(served.contains_key("acme/widgets#8:commits:200"));
}

#[test]
fn heavy_prs_first_pages_weigh_over_1000_and_light_ones_at_most_121() {
    let fake = FakeGithub::spawn(heavy_widgets());
    let truth = fake.truth("acme/widgets");
    let file_weight = FakeConfig::default().graphql_file_weight;
    // 1 (the PR) + 8 commits + 4 reviews + 10 files + 3 comments + 4 runs and a status.
    let light_max = 1 + 8 + 4 + 10 * file_weight + 3 + 5;
    let first = |range: &std::ops::RangeInclusive<u64>| (*range.start(), *range.end().min(&100));
    let (commits, reviews) = (first(&heavy::COMMITS), first(&heavy::REVIEWS));
    let (runs, comments) = (first(&heavy::CHECK_RUNS), first(&heavy::COMMENTS));
    let heavy_min = 1 + commits.0 + reviews.0 + 100 * file_weight + comments.0 + runs.0;
    let heavy_max = 1 + commits.1 + reviews.1 + 100 * file_weight + comments.1 + runs.1 + 1;
    assert_eq!((light_max, heavy_min, heavy_max), (121, 1028, 1202));

    let weigh = |fake: &FakeGithub, n: u64| -> (u16, u64) {
        let r = gql(fake, "t", FIRST_PAGES, json!({"n": n}));
        let pr = r.json()["data"]["repository"]["pullRequest"].clone();
        let items = |pointer: &str| {
            pr.pointer(pointer)
                .and_then(Value::as_array)
                .map_or(0, |a| a.len() as u64)
        };
        let weight = 1
            + items("/commits/nodes")
            + items("/reviews/nodes")
            + items("/files/nodes") * file_weight
            + items("/comments/nodes")
            + items("/statusCheckRollup/contexts/nodes");
        (r.status, weight)
    };
    let mut heaviest = (0, 0);
    for pr in &truth.per_pr[7..] {
        let (status, weight) = weigh(&fake, pr.number);
        assert_eq!(status, 200);
        if is_heavy(pr) {
            assert!((heavy_min..=heavy_max).contains(&weight), "#{}", pr.number);
            heaviest = heaviest.max((weight, pr.number));
        } else {
            assert!(weight <= light_max, "#{}: {weight}", pr.number);
        }
    }

    // That weight is the one timeouts are judged by: 1,000 fails heavy PRs alone and no
    // light one, and a limit at a PR's weight passes it where one less fails it.
    let (weight, n) = heaviest;
    let limited = |limit| {
        FakeGithub::spawn(FakeConfig {
            graphql_timeout_weight: Some(limit),
            ..heavy_widgets()
        })
    };
    let at_1000 = limited(1000);
    for pr in &truth.per_pr[7..] {
        let expected = if is_heavy(pr) { 502 } else { 200 };
        assert_eq!(weigh(&at_1000, pr.number).0, expected, "#{}", pr.number);
    }
    assert_eq!(weigh(&limited(weight), n).0, 200);
    assert_eq!(weigh(&limited(weight - 1), n).0, 502);
}

// ---------------------------------------------------------------------------------------
// Secondary limits by concurrency and points per minute; GitHub Apps.

/// The body of a secondary-limit answer must be GitHub's.
fn assert_secondary_limit(r: &Resp, retry_after: &str) {
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("retry-after"), Some(retry_after));
    let v = r.json();
    let message = v["message"].as_str().unwrap();
    assert!(
        message.starts_with("You have exceeded a secondary rate limit. Please wait a few minutes")
            && message.contains("please include the request ID"),
        "{message}"
    );
    assert_eq!(
        v["documentation_url"],
        "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"
    );
}

#[test]
fn fourth_request_in_flight_of_one_account_is_refused_and_other_tokens_are_not() {
    let fake = FakeGithub::spawn(FakeConfig {
        max_in_flight_per_token: Some(3),
        latency: Duration::from_millis(600),
        faults: Faults {
            secondary_retry_after: Some(2),
            ..Faults::default()
        },
        ..widgets(3)
    });
    let pulls = "/repos/acme/widgets/pulls";
    std::thread::scope(|s| {
        for _ in 0..3 {
            let fake = &fake;
            s.spawn(move || assert_eq!(get(fake, pulls, "a").status, 200));
        }
        let fake = &fake;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(get(fake, pulls, "b").status, 200, "b has its own account");
        });
        std::thread::sleep(Duration::from_millis(200));
        let refused = get(fake, pulls, "a");
        assert_secondary_limit(&refused, "2");
        assert_eq!(
            refused.num("x-ratelimit-remaining"),
            4997,
            "quota is left, and the refusal used none"
        );
        // The account is penalised for retry-after seconds.
        let again = get(fake, pulls, "a");
        assert_eq!(again.status, 403);
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(&fake, pulls, "a").status, 200, "the penalty is over");
    let s = fake.stats();
    assert_eq!(
        (
            s.secondary_limited,
            s.secondary_injected,
            s.sent_during_secondary_penalty
        ),
        (1, 0, 1)
    );
    assert_eq!(s.counted_requests, 5, "3 + 1 of a, 1 of b");
    assert_eq!(
        s.per_token["a"].max_in_flight, 4,
        "the refused one was in flight too"
    );
    assert_eq!(s.per_token["a"].secondary_limited, 1);
    assert_eq!(s.per_token["b"].max_in_flight, 1);
    let outcomes: Vec<Outcome> = fake
        .requests_log()
        .iter()
        .filter(|r| r.token.as_deref() == Some("a"))
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::SecondaryLimited)
            .count(),
        1
    );
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Outcome::SecondaryPenalty)
            .count(),
        1
    );
}

#[test]
fn without_a_concurrency_limit_many_requests_of_one_token_are_served() {
    let fake = FakeGithub::spawn(FakeConfig {
        latency: Duration::from_millis(300),
        ..widgets(3)
    });
    std::thread::scope(|s| {
        for _ in 0..6 {
            let fake = &fake;
            s.spawn(move || assert_eq!(get(fake, "/user", "a").status, 200));
        }
    });
    let s = fake.stats();
    assert_eq!(s.secondary_limited, 0);
    assert!(s.per_token["a"].max_in_flight >= 2);
}

#[test]
fn points_per_minute_are_capped_per_account_and_graphql_counts_apart_from_rest() {
    let fake = FakeGithub::spawn(FakeConfig {
        max_points_per_minute: Some(5),
        max_graphql_points_per_minute: Some(2),
        faults: Faults {
            secondary_retry_after: Some(30),
            ..Faults::default()
        },
        ..widgets(30)
    });
    for i in 0..5 {
        let r = get(&fake, "/repos/acme/widgets/pulls", "a");
        assert_eq!(r.status, 200, "GET {i} is within 5 points");
    }
    let refused = get(&fake, "/repos/acme/widgets/pulls", "a");
    assert_secondary_limit(&refused, "30");
    assert_eq!(refused.num("x-ratelimit-remaining"), 4995);
    assert_eq!(get(&fake, "/user", "b").status, 200, "another account");

    // GraphQL: 1 point a query whatever its primary cost, in a window of its own: REST
    // requests of "c" do not use its GraphQL points.
    for _ in 0..3 {
        assert_eq!(get(&fake, "/user", "c").status, 200);
    }
    for _ in 0..2 {
        let data = gql_data(&fake, "c", &three_per_pr(30), json!({}));
        assert!(data["rateLimit"]["cost"].as_u64().unwrap() >= 1);
    }
    let refused = gql(&fake, "c", "{ viewer { login } }", json!({}));
    assert_secondary_limit(&refused, "30");
    assert_eq!(refused.header("x-ratelimit-resource"), Some("graphql"));
    let s = fake.stats();
    assert_eq!(s.secondary_limited, 2);
    assert_eq!(s.counted_requests, 9, "5 of a, 1 of b, 3 of c");
    assert_eq!(s.per_token["c"].graphql_queries, 3);
}

/// Throwaway keys of `tests/fixtures/` (see its README).
fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}

/// A JWT with these claims, signed RS256 with the fixture key `key`.
fn app_jwt(key: &str, claims: Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(fixture(key).as_bytes()).unwrap();
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// A JWT for app `iss` as GitHub recommends it: issued 60 s ago, expiring in 9 minutes.
fn good_jwt(iss: Value) -> String {
    let now = now_secs();
    app_jwt(
        "app-key.pem",
        json!({"iat": now - 60, "exp": now + 540, "iss": iss}),
    )
}

fn app_config(ttl: Duration) -> FakeConfig {
    use fake_github::{FakeApp, FakeInstallation};
    let public = fixture("app-key.pub.pem");
    FakeConfig {
        users: HashSet::from(["solo".to_string()]),
        apps: vec![
            FakeApp::new(
                123,
                &public,
                vec![
                    FakeInstallation::new(45, "acme", 50),
                    FakeInstallation::new(46, "solo", 60),
                ],
            )
            .token_ttl(ttl),
            FakeApp::new(124, &public, vec![FakeInstallation::new(77, "other", 10)]),
        ],
        ..widgets(3)
    }
}

fn post(fake: &FakeGithub, target: &str, token: &str) -> Resp {
    let auth = format!("Bearer {token}");
    request(fake, "POST", target, &[("Authorization", &auth)])
}

#[test]
fn app_jwt_lists_installations_and_mints_tokens_that_work_until_they_expire() {
    let fake = FakeGithub::spawn(app_config(Duration::from_secs(2)));
    let jwt = good_jwt(json!(123));

    let r = get(&fake, "/app/installations", &jwt);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.header("x-ratelimit-limit").is_none(),
        "no installation quota used"
    );
    let list = r.json();
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![45, 46], "only app 123's installations");
    let first = &list[0];
    assert_eq!(first["app_id"], 123);
    assert_eq!(first["account"]["login"], "acme");
    assert_eq!(first["account"]["type"], "Organization");
    assert_eq!(first["target_type"], "Organization");
    assert_eq!(first["target_id"], first["account"]["id"]);
    assert_eq!(list[1]["account"]["type"], "User");
    assert_eq!(first["repository_selection"], "all");
    assert_eq!(
        first["access_tokens_url"],
        format!("{}/app/installations/45/access_tokens", fake.url())
    );
    assert!(first["created_at"].as_str().unwrap().ends_with('Z'));

    // Paged like the other lists; under /api/v3 too; iss as a string or the client id.
    let page = get(&fake, "/api/v3/app/installations?per_page=1", &jwt);
    assert_eq!(page.json()[0]["id"], 45);
    let next = page.next().expect("a next page");
    assert!(
        next.contains("/api/v3/app/installations?per_page=1&page=2"),
        "{next}"
    );
    assert_eq!(get(&fake, &next, &jwt).json()[0]["id"], 46);
    for iss in [
        json!("123"),
        json!(fake_github::FakeApp::default_client_id(123)),
    ] {
        assert_eq!(get(&fake, "/app/installations", &good_jwt(iss)).status, 200);
    }
    let pkcs8 = app_jwt(
        "app-key-pkcs8.pem",
        json!({"iat": now_secs() - 60, "exp": now_secs() + 540, "iss": 123}),
    );
    assert_eq!(get(&fake, "/app/installations", &pkcs8).status, 200);

    // Minting: GitHub's 201 shape.
    let minted = post(&fake, "/app/installations/45/access_tokens", &jwt);
    assert_eq!(
        minted.status,
        201,
        "{}",
        String::from_utf8_lossy(&minted.body)
    );
    let body = minted.json();
    let token = body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("ghs_") && token.len() == 40, "{token}");
    assert!(token[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    let expires_at = body["expires_at"].as_str().unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(expires_at).unwrap();
    assert!(
        expires_at.ends_with('Z') && expires_at.len() == 20,
        "{expires_at}"
    );
    let ttl = expires.timestamp() - now_secs();
    assert!((0..=2).contains(&ttl), "expires in {ttl} s");
    assert_eq!(
        body["permissions"],
        json!({"metadata": "read", "pull_requests": "read", "contents": "read", "checks": "read"})
    );
    assert_eq!(body["repository_selection"], "all");
    assert_eq!(
        post(&fake, "/app/installations/77/access_tokens", &jwt).status,
        404,
        "app 124's"
    );
    assert_eq!(
        post(&fake, "/app/installations/999/access_tokens", &jwt).status,
        404
    );
    assert_eq!(
        get(&fake, "/app/installations/45/access_tokens", &jwt).status,
        404,
        "POST only"
    );

    // The token works on REST and GraphQL, in the installation's bucket, shared by every
    // token of the installation.
    let r = get(&fake, "/repos/acme/widgets/pulls", &token);
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.num("x-ratelimit-limit"), r.num("x-ratelimit-remaining")),
        (50, 49)
    );
    assert_eq!(r.header("x-ratelimit-resource"), Some("core"));
    let data = gql_data(
        &fake,
        &token,
        "{ rateLimit { limit remaining } }",
        json!({}),
    );
    assert_eq!(data["rateLimit"]["limit"], 50);
    let renewed = post(&fake, "/app/installations/45/access_tokens", &jwt).json()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(renewed, token);
    let r = get(&fake, "/repos/acme/widgets/pulls", &renewed);
    assert_eq!(
        r.num("x-ratelimit-remaining"),
        48,
        "one bucket per installation"
    );
    assert_eq!(
        get(&fake, "/user", &token).status,
        403,
        "an installation is no user"
    );
    assert_eq!(
        get(&fake, "/user", &format!("ghs_{}", "0".repeat(36))).status,
        401
    );
    assert_eq!(fake.tokens_minted(45), 2);
    assert_eq!(fake.tokens_minted(46), 0);

    // Expired: 401 Bad credentials, like any bad token.
    let left = expires.timestamp_millis() - now_ms() as i64;
    std::thread::sleep(Duration::from_millis(left.max(0) as u64 + 100));
    let r = get(&fake, "/repos/acme/widgets/pulls", &token);
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "Bad credentials");
    let r = gql(&fake, &token, "{ viewer { login } }", json!({}));
    assert_eq!(r.status, 401);

    let s = fake.stats();
    assert_eq!((s.tokens_minted, s.jwt_rejected), (2, 0));
    assert_eq!(s.tokens_minted_per_installation.get(&45), Some(&2));
    let log = fake.requests_log();
    assert!(
        log.iter().all(|r| !r
            .token
            .as_deref()
            .is_some_and(|t| t.contains(&jwt) || t.starts_with("eyJ"))),
        "the log never holds a JWT"
    );
    let app_rows: Vec<_> = log.iter().filter(|r| r.outcome == Outcome::App).collect();
    assert!(app_rows
        .iter()
        .all(|r| r.token.as_deref().unwrap().starts_with("jwt:") && !r.counted));
    assert_eq!(app_rows[0].account.as_deref(), Some("app:123"));
    let inst = log
        .iter()
        .find(|r| r.token.as_deref() == Some(token.as_str()))
        .unwrap();
    assert_eq!(inst.account.as_deref(), Some("installation:45"));
}

#[test]
fn jwts_github_refuses_get_its_401_messages() {
    let fake = FakeGithub::spawn(app_config(Duration::from_secs(3600)));
    let now = now_secs();
    let undecodable = "A JSON web token could not be decoded";
    let ec_signed = {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(fixture("ec-key.pem").as_bytes()).unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        let claims = json!({"iat": now - 60, "exp": now + 540, "iss": 123});
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    let claims = |iat: i64, exp: i64| json!({"iat": iat, "exp": exp, "iss": 123});
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "signed with another app's key",
            app_jwt("other-app-key.pem", claims(now - 60, now + 540)),
            401,
            undecodable,
        ),
        ("ES256, not RS256", ec_signed, 401, undecodable),
        (
            "not a JWT",
            "ghp_notAJwtAtAll".to_string(),
            401,
            undecodable,
        ),
        (
            "expired",
            app_jwt("app-key.pem", claims(now - 700, now - 100)),
            401,
            "'Expiration time' claim ('exp') must be a numeric value representing the future \
             time at which the assertion expires",
        ),
        (
            "exp - iat over 600 s",
            app_jwt("app-key.pem", claims(now - 120, now + 540)),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            "exp over 10 minutes from now",
            app_jwt("app-key.pem", claims(now, now + 700)),
            401,
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            "iat in the future",
            app_jwt("app-key.pem", claims(now + 120, now + 300)),
            401,
            "'Issued at' claim ('iat') must be an Integer representing the time that the \
             assertion was issued",
        ),
        (
            "iss is no app id",
            app_jwt(
                "app-key.pem",
                json!({"iat": now - 60, "exp": now + 540, "iss": 999}),
            ),
            404,
            "Integration not found",
        ),
        (
            "iss is neither a number nor a client id",
            app_jwt(
                "app-key.pem",
                json!({"iat": now - 60, "exp": now + 540, "iss": "app"}),
            ),
            401,
            "'Issuer' claim ('iss') must be an Integer",
        ),
    ];
    for (what, jwt, status, message) in &cases {
        for (method, path) in [
            ("GET", "/app/installations"),
            ("POST", "/app/installations/45/access_tokens"),
        ] {
            let auth = format!("Bearer {jwt}");
            let r = request(&fake, method, path, &[("Authorization", &auth)]);
            assert_eq!(r.status, *status, "{what}: {method} {path}");
            let v = r.json();
            assert_eq!(v["message"], *message, "{what}: {method} {path}");
            assert_eq!(v["documentation_url"], "https://docs.github.com/rest");
        }
    }
    let r = request(&fake, "GET", "/app/installations", &[]);
    assert_eq!(r.status, 401, "no JWT at all");
    let s = fake.stats();
    assert_eq!(s.jwt_rejected, cases.len() as u64 * 2 + 1);
    assert_eq!(s.tokens_minted, 0);
    assert!(fake
        .requests_log()
        .iter()
        .all(|r| r.outcome == Outcome::JwtRejected && r.account.is_none()));
}
