//! JSON rendering of the generated data, in GitHub's REST shapes: repository, pull-list item,
//! pull detail, commit, review, file, check run, review comment, issue comment.
//!
//! Bodies use `https://api.github.com` in their `url` fields, so they do not depend on the
//! port or Host header (only `link` headers do).

use serde_json::{json, Value};

use super::data::{kind, owner_id, salt, ts, Pr, Repo, User, API, BASE_EPOCH, WEB};

const CHECK_NAMES: [&str; 5] = [
    "build",
    "test (ubuntu-latest)",
    "test (windows-latest)",
    "lint",
    "docs",
];
const REVIEW_STATES: [&str; 5] = [
    "APPROVED",
    "CHANGES_REQUESTED",
    "COMMENTED",
    "COMMENTED",
    "DISMISSED",
];

fn user_json(u: &Option<User>) -> Value {
    u.as_ref().map(User::json).unwrap_or(Value::Null)
}

impl Repo {
    pub(super) fn clamp_time(&self, pr: &Pr, t: i64) -> i64 {
        t.min(pr.updated).max(pr.created)
    }

    pub(super) fn repo_url(&self) -> String {
        format!("{API}/repos/{}", self.spec.full_name)
    }

    /// The repository JSON (`/repos/{o}/{r}` and inside `head.repo`/`base.repo`).
    pub fn repo_json(&self) -> Value {
        self.repo_value.clone()
    }

    /// The last push: about when the newest PR was opened.
    pub(super) fn pushed(&self) -> i64 {
        BASE_EPOCH + self.spec.pr_count as i64 * 3600
    }

    pub(super) fn build_repo_json(&self) -> Value {
        let full = &self.spec.full_name;
        let owner_id = owner_id(&self.owner);
        let (owner_type, owner_node) = if self.owner_is_user {
            ("User", format!("U_kgDO{owner_id:X}"))
        } else {
            ("Organization", format!("O_kgDO{owner_id:X}"))
        };
        json!({
            "id": self.spec.id,
            "node_id": format!("R_kgDO{:X}", self.spec.id),
            "name": self.name,
            "full_name": full,
            "private": false,
            "owner": {
                "login": self.owner, "id": owner_id, "node_id": owner_node, "type": owner_type,
                "url": format!("{API}/users/{}", self.owner),
                "html_url": format!("{WEB}/{}", self.owner), "site_admin": false
            },
            "html_url": format!("{WEB}/{full}"),
            "description": format!("Fake repository {full}"),
            "fork": self.spec.fork,
            "url": self.repo_url(),
            "archived": self.spec.archived,
            "disabled": false,
            "default_branch": "main",
            "visibility": "public",
            "created_at": ts(self.created),
            "updated_at": ts(self.pushed()),
            "pushed_at": ts(self.pushed()),
        })
    }

    /// The node id of PR `n` (REST's `node_id`, GraphQL's `id`).
    pub fn pull_node_id(&self, n: u64) -> String {
        format!("PR_kwDO{:X}", self.id(n, kind::PR, 0))
    }

    /// A pull-list item (`detail = false`) or a pull detail (`detail = true`).
    pub fn pull_json(&self, pr: &Pr, detail: bool) -> Value {
        let n = pr.number;
        let full = &self.spec.full_name;
        let url = format!("{}/pulls/{n}", self.repo_url());
        let issue_url = format!("{}/issues/{n}", self.repo_url());
        let html = format!("{WEB}/{full}/pull/{n}");
        let author = user_json(&pr.author);
        let labels: Vec<Value> = if self.pct(n, salt::MISC, 3) < 30 {
            vec![
                json!({"id": self.id(n, kind::LABEL, 0), "name": "bug", "color": "d73a4a", "default": true}),
            ]
        } else {
            vec![]
        };
        let head_label = match &pr.author {
            Some(u) => format!("{}:{}", u.login, pr.head_ref),
            None => format!("ghost:{}", pr.head_ref),
        };
        let mut v = json!({
            "url": url,
            "id": self.id(n, kind::PR, 0),
            "node_id": self.pull_node_id(n),
            "html_url": html,
            "diff_url": format!("{html}.diff"),
            "patch_url": format!("{html}.patch"),
            "issue_url": issue_url,
            "number": n,
            "state": if pr.open { "open" } else { "closed" },
            "locked": false,
            "title": pr.title,
            "user": author,
            "body": pr.body,
            "created_at": ts(pr.created),
            "updated_at": ts(pr.updated),
            "closed_at": pr.closed.map(ts),
            "merged_at": pr.merged_at.map(ts),
            "merge_commit_sha": pr.merge_commit_sha,
            "assignee": null,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": labels,
            "milestone": null,
            "draft": pr.draft,
            "commits_url": format!("{url}/commits"),
            "review_comments_url": format!("{url}/comments"),
            "review_comment_url": format!("{}/pulls/comments{{/number}}", self.repo_url()),
            "comments_url": format!("{issue_url}/comments"),
            "statuses_url": format!("{}/statuses/{}", self.repo_url(), pr.head_sha),
            "head": {
                "label": head_label,
                "ref": pr.head_ref,
                "sha": pr.head_sha,
                "user": author,
                "repo": if pr.author.is_some() { self.repo_json() } else { Value::Null },
            },
            "base": {
                "label": format!("{}:main", self.owner),
                "ref": "main",
                "sha": pr.base_sha,
                "user": self.repo_value["owner"].clone(),
                "repo": self.repo_json(),
            },
            "_links": {
                "self": {"href": url},
                "html": {"href": html},
                "issue": {"href": issue_url},
            },
            "author_association": if pr.author.is_some() { "CONTRIBUTOR" } else { "NONE" },
            "auto_merge": null,
            "active_lock_reason": null,
        });
        if detail {
            let (additions, deletions) = self.line_totals(pr);
            let extra = json!({
                "merged": pr.merged_at.is_some(),
                "mergeable": if pr.open { Value::Bool(true) } else { Value::Null },
                "rebaseable": if pr.open { Value::Bool(true) } else { Value::Null },
                "mergeable_state": if pr.open { "clean" } else { "unknown" },
                "merged_by": if pr.merged_at.is_some() {
                    User::pool(self.h(n, salt::AUTHOR, 3)).json()
                } else {
                    Value::Null
                },
                "comments": pr.issue_comments,
                "review_comments": pr.review_comments,
                "maintainer_can_modify": false,
                "commits": pr.commits_total,
                "additions": additions,
                "deletions": deletions,
                "changed_files": pr.files_total(),
            });
            if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
                m.extend(e);
            }
        }
        v
    }

    /// Commit `i` of a PR, as `/pulls/{n}/commits` serves it.
    pub fn commit_json(&self, pr: &Pr, i: u64) -> Value {
        let n = pr.number;
        let sha = self.commit_sha(n, i);
        let hh = self.h(n, salt::COMMIT, i);
        let author = match &pr.author {
            None => None,
            Some(_) if hh % 100 < 10 => None,
            Some(_) if hh % 100 < 20 => Some(User::pool(hh >> 8)),
            Some(u) => Some(u.clone()),
        };
        let (name, email) = match &author {
            Some(u) => (
                u.login.clone(),
                format!("{}@users.noreply.github.com", u.login),
            ),
            None => ("Ghost Author".to_string(), format!("ghost{n}@example.com")),
        };
        let date = ts(pr.created - (pr.commits_total - i) as i64 * 300);
        let message = if n == 2 {
            format!("✨ sparkle commit {i} — ünïcode")
        } else {
            format!("Commit {i} of widget {n}\n\nSigned-off-by: {name} <{email}>")
        };
        let parent = if i == 0 {
            pr.base_sha.clone()
        } else {
            self.commit_sha(n, i - 1)
        };
        let person = json!({"name": name, "email": email, "date": date});
        json!({
            "sha": sha,
            "node_id": format!("C_kwDO{}", &sha[..12]),
            "commit": {
                "author": person,
                "committer": person,
                "message": message,
                "tree": {"sha": self.other_sha(n, 50_000 + i), "url": format!("{}/git/trees/x", self.repo_url())},
                "url": format!("{}/git/commits/{sha}", self.repo_url()),
                "comment_count": 0,
                "verification": {"verified": false, "reason": "unsigned", "signature": null, "payload": null},
            },
            "url": format!("{}/commits/{sha}", self.repo_url()),
            "html_url": format!("{WEB}/{}/commit/{sha}", self.spec.full_name),
            "comments_url": format!("{}/commits/{sha}/comments", self.repo_url()),
            "author": user_json(&author),
            "committer": user_json(&author),
            "parents": [{"sha": parent, "url": format!("{}/commits/{parent}", self.repo_url())}],
        })
    }

    /// Review `j` of a PR (`j < reviews()`); reviews past `reviews_base` come from touches.
    pub fn review_json(&self, pr: &Pr, j: u64) -> Value {
        let n = pr.number;
        let hh = self.h(n, salt::REVIEW, j);
        let id = self.id(n, kind::REVIEW, j);
        let (user, state, body, at) = if j >= pr.reviews_base {
            let t = j - pr.reviews_base + 1;
            (
                Some(User::pool(hh)),
                "COMMENTED",
                format!("Re-reviewed after edit {t}"),
                pr.touch.at,
            )
        } else {
            let user = if hh % 100 < 5 || (n == 7 && j == 0) {
                None
            } else {
                Some(User::pool(hh >> 8))
            };
            let state = REVIEW_STATES[((hh >> 16) % 5) as usize];
            let body = if state == "APPROVED" {
                "LGTM 👍".to_string()
            } else {
                String::new()
            };
            let at = self.clamp_time(
                pr,
                pr.created + (j as i64 + 1) * 1800 + ((hh >> 24) % 1800) as i64,
            );
            (user, state, body, at)
        };
        json!({
            "id": id,
            "node_id": format!("PRR_kwDO{id:X}"),
            "user": user_json(&user),
            "body": body,
            "state": state,
            "html_url": format!("{WEB}/{}/pull/{n}#pullrequestreview-{id}", self.spec.full_name),
            "pull_request_url": format!("{}/pulls/{n}", self.repo_url()),
            "author_association": if user.is_some() { "MEMBER" } else { "NONE" },
            "submitted_at": ts(at),
            "commit_id": pr.head_sha,
        })
    }

    /// A file of a PR as `/pulls/{n}/files` serves it.
    pub fn file_json(&self, pr: &Pr, k: u64) -> Value {
        let f = self.file(pr, k);
        let full = &self.spec.full_name;
        let mut v = json!({
            "sha": f.sha,
            "filename": f.filename,
            "status": f.status,
            "additions": f.additions,
            "deletions": f.deletions,
            "changes": f.additions + f.deletions,
            "blob_url": format!("{WEB}/{full}/blob/{}/{}", pr.head_sha, f.filename),
            "raw_url": format!("{WEB}/{full}/raw/{}/{}", pr.head_sha, f.filename),
            "contents_url": format!("{}/contents/{}?ref={}", self.repo_url(), f.filename, pr.head_sha),
            "patch": format!("@@ -1,{} +1,{} @@\n-old\n+new", f.deletions, f.additions),
        });
        if let (Some(prev), Value::Object(m)) = (f.previous_filename, &mut v) {
            m.insert("previous_filename".into(), Value::String(prev));
        }
        v
    }

    /// Check run `k` on a PR's head sha.
    pub fn check_run_json(&self, pr: &Pr, k: u64) -> Value {
        let n = pr.number;
        let hh = self.h(n, salt::CHECK, k);
        let id = self.id(n, kind::CHECK_RUN, k);
        let completed = hh % 100 < 85 || !pr.open;
        let status = if completed {
            "completed"
        } else if hh.is_multiple_of(2) {
            "in_progress"
        } else {
            "queued"
        };
        let conclusion = if completed {
            Value::String(
                match (hh >> 8) % 100 {
                    0..=74 => "success",
                    75..=89 => "failure",
                    90..=94 => "skipped",
                    95..=97 => "neutral",
                    _ => "cancelled",
                }
                .into(),
            )
        } else {
            Value::Null
        };
        let started = pr.created + 60 * (k as i64 + 1);
        json!({
            "id": id,
            "head_sha": pr.head_sha,
            "node_id": format!("CR_kwDO{id:X}"),
            "external_id": format!("ext-{id}"),
            "url": format!("{}/check-runs/{id}", self.repo_url()),
            "html_url": format!("{WEB}/{}/runs/{id}", self.spec.full_name),
            "details_url": format!("{WEB}/{}/actions/runs/{id}", self.spec.full_name),
            "status": status,
            "conclusion": conclusion,
            "started_at": ts(started),
            "completed_at": if completed { Value::String(ts(started + 30 + ((hh >> 16) % 600) as i64)) } else { Value::Null },
            "output": {"title": null, "summary": null, "text": null, "annotations_count": 0,
                       "annotations_url": format!("{}/check-runs/{id}/annotations", self.repo_url())},
            "name": CHECK_NAMES[k as usize % CHECK_NAMES.len()],
            "check_suite": {"id": self.id(n, kind::CHECK_SUITE, 0)},
            "app": {"id": 15_368, "slug": "github-actions", "name": "GitHub Actions"},
            "pull_requests": [],
        })
    }

    fn comment_user(hh: u64) -> Option<User> {
        if hh % 100 < 5 {
            None
        } else {
            Some(User::pool(hh >> 8))
        }
    }

    /// Review comment `j` of a PR (`/pulls/{n}/comments`).
    pub fn review_comment_json(&self, pr: &Pr, j: u64) -> Value {
        let n = pr.number;
        let hh = self.h(n, salt::COMMENT, j);
        let id = self.id(n, kind::REVIEW_COMMENT, j);
        let user = Self::comment_user(hh);
        let at = self.clamp_time(pr, pr.created + (j as i64 + 1) * 2400);
        let review_id = if pr.reviews_base > 0 {
            Value::from(self.id(n, kind::REVIEW, j % pr.reviews_base))
        } else {
            Value::Null
        };
        let body = if n.is_multiple_of(10) && j == 0 {
            "Emoji nit 👀 with `code` and \"quotes\"".to_string()
        } else {
            format!("Nit {j} on widget {n}")
        };
        json!({
            "id": id,
            "node_id": format!("PRRC_kwDO{id:X}"),
            "url": format!("{}/pulls/comments/{id}", self.repo_url()),
            "pull_request_review_id": review_id,
            "diff_hunk": "@@ -1,1 +1,1 @@\n-old\n+new",
            "path": self.file(pr, 0).filename,
            "position": 1,
            "original_position": 1,
            "commit_id": pr.head_sha,
            "original_commit_id": pr.head_sha,
            "user": user_json(&user),
            "body": body,
            "created_at": ts(at),
            "updated_at": ts(at),
            "html_url": format!("{WEB}/{}/pull/{n}#discussion_r{id}", self.spec.full_name),
            "pull_request_url": format!("{}/pulls/{n}", self.repo_url()),
            "author_association": if user.is_some() { "MEMBER" } else { "NONE" },
            "line": 1,
            "side": "RIGHT",
        })
    }

    /// Issue comment `j` of a PR (`/issues/{n}/comments`).
    pub fn issue_comment_json(&self, pr: &Pr, j: u64) -> Value {
        let n = pr.number;
        let hh = self.h(n, salt::COMMENT, 1000 + j);
        let id = self.id(n, kind::ISSUE_COMMENT, j);
        let user = Self::comment_user(hh);
        let at = self.clamp_time(pr, pr.created + (j as i64 + 1) * 3000);
        json!({
            "id": id,
            "node_id": format!("IC_kwDO{id:X}"),
            "url": format!("{}/issues/comments/{id}", self.repo_url()),
            "html_url": format!("{WEB}/{}/pull/{n}#issuecomment-{id}", self.spec.full_name),
            "issue_url": format!("{}/issues/{n}", self.repo_url()),
            "user": user_json(&user),
            "body": format!("Comment {j} on #{n}"),
            "created_at": ts(at),
            "updated_at": ts(at),
            "author_association": if user.is_some() { "CONTRIBUTOR" } else { "NONE" },
        })
    }
}
