//! Owner listings and hidden repositories, over real HTTP with a few-line HTTP/1.1 client
//! (as in `tests/fake_github_selftest.rs`, so no client library can hide a bug of the fake).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use super::super::{FakeConfig, FakeGithub, RepoSpec};

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

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("bad json ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The `link` header's URLs by `rel`.
    fn links(&self) -> HashMap<String, String> {
        self.header("link")
            .unwrap_or_default()
            .split(", ")
            .filter(|part| !part.is_empty())
            .map(|part| {
                let (url, rel) = part.split_once("; rel=").expect("link part");
                let url = url.trim_start_matches('<').trim_end_matches('>');
                (rel.trim_matches('"').to_string(), url.to_string())
            })
            .collect()
    }

    /// `full_name` of each item of a JSON array body.
    fn names(&self) -> Vec<String> {
        self.json()
            .as_array()
            .expect("array body")
            .iter()
            .map(|r| r["full_name"].as_str().expect("full_name").to_string())
            .collect()
    }
}

/// Sends one request on a fresh connection; `target` is a path or an absolute URL.
fn send(
    fake: &FakeGithub,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Resp {
    let path = match target.strip_prefix("http://") {
        Some(rest) => &rest[rest.find('/').unwrap_or(rest.len())..],
        None => target,
    };
    let mut s = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        fake.port(),
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
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

/// `GET target` with `token`.
fn get(fake: &FakeGithub, target: &str, token: &str) -> Resp {
    send(
        fake,
        "GET",
        target,
        &[("Authorization", &format!("Bearer {token}"))],
        "",
    )
}

/// Every page from `first` on, following `rel="next"`.
fn all_pages(fake: &FakeGithub, first: &str, token: &str) -> Vec<Resp> {
    let mut pages = vec![get(fake, first, token)];
    while let Some(next) = pages.last().and_then(|p| p.links().remove("next")) {
        assert!(pages.len() < 100, "too many pages");
        pages.push(get(fake, &next, token));
    }
    pages
}

/// A GraphQL query with `token`.
fn graphql(fake: &FakeGithub, token: &str, query: &str) -> Value {
    let body = json!({ "query": query }).to_string();
    let auth = format!("Bearer {token}");
    let r = send(fake, "POST", "/graphql", &[("Authorization", &auth)], &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()
}

/// acme: seven sources (repo-1..repo-7, created in that order) and two forks, one
/// archived; bob (a user): two repositories; elsewhere/other: another owner.
fn config() -> FakeConfig {
    let mut repos: Vec<RepoSpec> = (1..=7)
        .map(|i| RepoSpec::new(&format!("acme/repo-{i}"), 2))
        .collect();
    repos.push(RepoSpec::new("acme/fork-a", 1).fork());
    repos.push(RepoSpec::new("acme/fork-b", 1).fork().archived());
    repos.push(RepoSpec::new("bob/dotfiles", 1));
    repos.push(RepoSpec::new("bob/Zeta", 1));
    repos.push(RepoSpec::new("elsewhere/other", 1));
    FakeConfig {
        repos,
        users: HashSet::from(["bob".to_string(), "carol".to_string()]),
        ..FakeConfig::default()
    }
}

#[test]
fn org_listing_pages_newest_first_with_links_to_organizations_id() {
    let fake = FakeGithub::spawn(config());
    let first = get(&fake, "/orgs/ACME/repos?per_page=4", "t");
    assert_eq!(first.status, 200);
    assert!(first.header("etag").is_some(), "listings carry an ETag");
    assert!(first.header("x-ratelimit-remaining").is_some());
    let items = first.json();
    let repo = &items[0];
    assert_eq!(repo["owner"]["login"], "acme");
    assert_eq!(repo["owner"]["type"], "Organization");
    for field in [
        "id",
        "node_id",
        "name",
        "html_url",
        "url",
        "created_at",
        "updated_at",
        "pushed_at",
    ] {
        assert!(!repo[field].is_null(), "{field} missing in {repo}");
    }
    assert_eq!(
        (
            &repo["private"],
            &repo["disabled"],
            &repo["default_branch"],
            &repo["visibility"]
        ),
        (
            &json!(false),
            &json!(false),
            &json!("main"),
            &json!("public")
        )
    );

    let links = first.links();
    let org_id = repo["owner"]["id"].as_u64().unwrap();
    let base = format!("{}/organizations/{org_id}/repos", fake.url());
    assert_eq!(links["next"], format!("{base}?per_page=4&page=2"));
    assert_eq!(links["last"], format!("{base}?per_page=4&page=3"));
    assert!(!links.contains_key("prev") && !links.contains_key("first"));

    let pages = all_pages(&fake, "/orgs/acme/repos?per_page=4", "t");
    assert_eq!(pages.len(), 3);
    let last = pages[2].links();
    assert_eq!(last["prev"], format!("{base}?per_page=4&page=2"));
    assert_eq!(last["first"], format!("{base}?per_page=4&page=1"));
    assert!(!last.contains_key("next"));
    let names: Vec<String> = pages.iter().flat_map(Resp::names).collect();
    // GitHub's default for an organisation: sort=created, direction=desc.
    let mut expected: Vec<String> = (1..=7).map(|i| format!("acme/repo-{i}")).collect();
    expected.extend(["acme/fork-a".to_string(), "acme/fork-b".to_string()]);
    expected.reverse();
    assert_eq!(names, expected);

    let asc = get(
        &fake,
        "/api/v3/orgs/acme/repos?sort=full_name&per_page=100",
        "t",
    );
    let mut sorted = expected.clone();
    sorted.sort();
    assert_eq!(asc.names(), sorted, "full_name defaults to ascending");
    assert_eq!(asc.header("link"), None, "a single page has no link header");
    let created_asc = get(
        &fake,
        "/orgs/acme/repos?direction=asc&per_page=2&page=2",
        "t",
    );
    assert_eq!(created_asc.names(), ["acme/repo-3", "acme/repo-4"]);
    let prefixed = get(&fake, "/api/v3/orgs/acme/repos?per_page=5", "t").links();
    assert!(
        prefixed["next"].contains("/api/v3/organizations/"),
        "{prefixed:?}"
    );

    let big = get(&fake, "/orgs/acme/repos?per_page=500", "t");
    assert_eq!(
        big.names().len(),
        9,
        "per_page is capped at 100, not refused"
    );
    let past = get(&fake, "/orgs/acme/repos?page=9", "t");
    assert_eq!((past.status, past.names().len()), (200, 0));
}

#[test]
fn listings_honour_type_and_tell_users_from_orgs() {
    let fake = FakeGithub::spawn(config());
    let list = |target: &str| {
        let r = get(&fake, target, "t");
        assert_eq!(r.status, 200, "{target}");
        r.names()
    };
    let sorted = "sort=full_name";
    assert_eq!(
        list(&format!("/orgs/acme/repos?type=forks&{sorted}")),
        ["acme/fork-a", "acme/fork-b"]
    );
    let sources = list(&format!("/orgs/acme/repos?type=sources&{sorted}"));
    assert_eq!(
        sources,
        (1..=7)
            .map(|i| format!("acme/repo-{i}"))
            .collect::<Vec<_>>()
    );
    assert_eq!(list("/orgs/acme/repos?type=all").len(), 9);
    assert_eq!(list("/orgs/acme/repos?type=public").len(), 9);
    assert!(list("/orgs/acme/repos?type=private").is_empty());
    let archived = get(&fake, "/orgs/acme/repos?type=forks&sort=full_name", "t").json();
    assert_eq!(
        (&archived[0]["archived"], &archived[1]["archived"]),
        (&json!(false), &json!(true))
    );
    assert_eq!(
        (&archived[0]["fork"], &archived[1]["fork"]),
        (&json!(true), &json!(true))
    );

    // A user's default: type=owner, sort=full_name ascending (case-insensitive).
    assert_eq!(list("/users/bob/repos"), ["bob/dotfiles", "bob/Zeta"]);
    assert_eq!(
        list("/users/BOB/repos?type=owner&direction=desc"),
        ["bob/Zeta", "bob/dotfiles"]
    );
    assert_eq!(list("/users/bob/repos?type=all").len(), 2);
    assert!(list("/users/bob/repos?type=member").is_empty());
    let bob = get(&fake, "/users/bob/repos", "t").json();
    assert_eq!(bob[0]["owner"]["type"], "User");
    assert_eq!(
        bob[0]["owner"]["id"], bob[1]["owner"]["id"],
        "one id per owner"
    );
    assert!(
        list("/users/carol/repos").is_empty(),
        "a configured user without repositories"
    );
    assert_eq!(
        list("/users/acme/repos").len(),
        9,
        "the users route lists orgs too"
    );

    for target in [
        "/orgs/bob/repos",
        "/orgs/nobody/repos",
        "/users/nobody/repos",
        "/orgs/carol/repos",
    ] {
        let r = get(&fake, target, "t");
        assert_eq!(r.status, 404, "{target}");
        assert_eq!(r.json()["message"], "Not Found");
    }
    let stats = fake.stats();
    assert_eq!(
        stats.per_token["t"].counted, stats.per_token["t"].requests,
        "all charged"
    );
}

#[test]
fn hidden_repo_is_left_out_and_not_found_for_its_token_only() {
    let hidden = ["secret-token".to_string()];
    let mut cfg = config();
    cfg.repos
        .push(RepoSpec::new("acme/secret", 3).hidden_from(&hidden));
    let fake = FakeGithub::spawn(cfg);
    assert_eq!(
        fake.truth("acme/secret").prs,
        3,
        "truth still tells what is served"
    );
    let listed = |token: &str| get(&fake, "/orgs/acme/repos?per_page=100", token).names();
    assert!(listed("other").contains(&"acme/secret".to_string()));
    assert!(!listed("secret-token").contains(&"acme/secret".to_string()));
    assert_eq!(listed("secret-token").len(), 9);

    let detail = get(&fake, "/repos/acme/secret", "other").json();
    let repo_id = detail["id"].as_u64().unwrap();
    let paths = [
        "/repos/acme/secret".to_string(),
        "/repos/ACME/Secret/pulls?state=all".to_string(),
        "/repos/acme/secret/pulls/1/files".to_string(),
        format!("/repositories/{repo_id}/pulls?page=2"),
        format!("/api/v3/repositories/{repo_id}/pulls/1"),
    ];
    for path in &paths {
        let before = fake
            .stats()
            .per_token
            .get("secret-token")
            .map_or(0, |t| t.counted);
        let r = get(&fake, path, "secret-token");
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.json(),
            json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"})
        );
        assert!(r.header("x-ratelimit-remaining").is_some(), "{path}");
        assert_eq!(
            fake.stats().per_token["secret-token"].counted,
            before + 1,
            "404s are charged"
        );
        assert_eq!(get(&fake, path, "other").status, 200, "{path}");
    }

    let query = r#"query { repository(owner: "acme", name: "secret") { nameWithOwner } }"#;
    let seen = graphql(&fake, "other", query);
    assert_eq!(seen["data"]["repository"]["nameWithOwner"], "acme/secret");
    assert!(seen.get("errors").is_none(), "{seen}");
    let unseen = graphql(&fake, "secret-token", query);
    assert_eq!(unseen["data"]["repository"], Value::Null);
    let error = &unseen["errors"][0];
    assert_eq!(error["type"], "NOT_FOUND");
    assert_eq!(error["path"], json!(["repository"]));
    assert_eq!(
        error["message"],
        "Could not resolve to a Repository with the name 'acme/secret'."
    );
    assert!(error["locations"][0]["line"].is_u64(), "{error}");
    let unknown = graphql(
        &fake,
        "other",
        r#"query { repository(owner: "acme", name: "nope") { name } }"#,
    );
    let unknown = &unknown["errors"][0];
    assert_eq!(
        (&unknown["type"], &unknown["path"]),
        (&error["type"], &error["path"])
    );

    let node_id = get(&fake, "/repos/acme/secret/pulls/1", "other").json()["node_id"].clone();
    let node_query = format!(r#"query {{ node(id: {node_id}) {{ id }} }}"#);
    assert_eq!(
        graphql(&fake, "other", &node_query)["data"]["node"]["id"],
        node_id
    );
    let hidden_node = graphql(&fake, "secret-token", &node_query);
    assert_eq!(hidden_node["data"]["node"], Value::Null);
    assert_eq!(hidden_node["errors"][0]["type"], "NOT_FOUND");
}

#[test]
fn repo_added_while_running_is_listed_as_newest_and_can_be_hidden() {
    let fake = FakeGithub::spawn(config());
    let newest_before = get(&fake, "/orgs/acme/repos?per_page=1", "t").json()[0].clone();
    fake.add_repo(RepoSpec::new("acme/brand-new", 5));
    let newest = get(&fake, "/orgs/acme/repos?per_page=1", "t").json()[0].clone();
    assert_eq!(newest["full_name"], "acme/brand-new");
    let (before, after) = (
        newest_before["created_at"].as_str(),
        newest["created_at"].as_str(),
    );
    assert!(after > before, "{after:?} is not after {before:?}");
    assert_eq!(fake.truth("acme/brand-new").prs, 5);
    assert_eq!(get(&fake, "/repos/acme/brand-new/pulls/5", "t").status, 200);
    let query = r#"query { repository(owner: "acme", name: "brand-new") { pullRequest(number: 5) { number } } }"#;
    assert_eq!(
        graphql(&fake, "t", query)["data"]["repository"]["pullRequest"]["number"],
        5
    );

    fake.hide_repo("ACME/brand-new", "t");
    assert_eq!(get(&fake, "/repos/acme/brand-new", "t").status, 404);
    assert_eq!(get(&fake, "/repos/acme/brand-new", "u").status, 200);
    let names = get(&fake, "/orgs/acme/repos", "t").names();
    assert!(!names.contains(&"acme/brand-new".to_string()));
}

#[test]
fn many_draws_skewed_pr_counts_between_the_bounds_deterministically() {
    let repos = RepoSpec::many("bench", 1000, 5..=2000, 7);
    assert_eq!(
        repos,
        RepoSpec::many("bench", 1000, 5..=2000, 7),
        "deterministic"
    );
    assert_ne!(repos, RepoSpec::many("bench", 1000, 5..=2000, 8), "seeded");
    assert_eq!(repos[0].full_name, "bench/repo-0001");
    assert_eq!(repos[999].full_name, "bench/repo-1000");
    let ids: HashSet<u64> = repos.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), 1000, "distinct ids");
    let mut counts: Vec<u32> = repos.iter().map(|r| r.pr_count).collect();
    assert!(counts.iter().all(|c| (5..=2000).contains(c)));
    counts.sort_unstable();
    let mean = counts.iter().map(|&c| f64::from(c)).sum::<f64>() / 1000.0;
    let expected = 5.0 + 1995.0 / 8.0;
    assert!(
        (mean - expected).abs() < expected * 0.2,
        "mean {mean}, expected about {expected}"
    );
    assert!(counts[500] < 60, "median {} is small", counts[500]);
    assert!(
        counts[990] > 1000,
        "a few are large: 99th percentile {}",
        counts[990]
    );
    assert_eq!(
        RepoSpec::many("x", 3, 9..=9, 1)
            .iter()
            .map(|r| r.pr_count)
            .collect::<Vec<_>>(),
        [9, 9, 9]
    );
}
