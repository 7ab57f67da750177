//! Deterministic generation of a repository's pull requests and everything under them.
//!
//! Nothing is stored: every value is a pure function of the repository seed, the PR number
//! and the index of the item, plus the small [`Touch`] override that `touch_pr` records.
//!
//! Shape of the data (PR `n`):
//! - title `"Fix widget {n}"`, except #1 `'; DROP TABLE jobs;--`, #2 unicode and emoji,
//!   #4 double and single quotes, a backtick, `\n`, `\r\n` and a tab;
//! - about 12 % open (a tenth of those drafts), the rest closed, 80 % of closed merged;
//! - `created_at` strictly increasing with `n` (one hour apart from 2018-01-01),
//!   `updated_at >= closed_at >= created_at`;
//! - author: #7 and about 3 % of the others `"user": null` (deleted account, and then
//!   `head.repo` is null too), about 5 % `dependabot[bot]`, the rest from a pool of 40 users;
//! - commits 1-8; #3 has 300 (only 250 served, and its head commit is not among them);
//!   #6 has 120 (two pages of 100);
//! - files 1-10; #5 has 150; reviews, check runs (on the head sha), review comments and
//!   issue comments 0-4, 0-4, 0-3, 0-3; some reviews, comments and commits have a null user;
//! - heavy PRs (`RepoSpec::heavy_percent` % of those past #7, none by default) take their
//!   counts from [`heavy`] (100-1,200 files, 20-250 commits...), all else as above;
//! - ids (PR, review, check run, comment...) are `prefix << 39 | n << 15 | kind << 12 | j`,
//!   below 2^55 (so exact in a JS double and an i64), where `prefix` (1..65535) comes from a
//!   hash of the repository id, probed to be unique among the repositories of one server:
//!   ids are unique within a server, stable across runs, and in practice across servers;
//! - commit shas end with `{index:08x}{n:08x}`, so check runs can find their PR.

use serde_json::{json, Value};

use super::RepoSpec;

/// 2018-01-01T00:00:00Z: PR #n is created about n hours after it.
pub const BASE_EPOCH: i64 = 1_514_764_800;
/// API root used inside bodies (`url` fields); bodies do not depend on the Host header.
pub const API: &str = "https://api.github.com";
/// Web root used inside bodies (`html_url` fields).
pub const WEB: &str = "https://github.com";
/// GitHub serves at most this many commits for a PR.
pub const COMMITS_CAP: u64 = 250;
/// GitHub serves at most this many files for a PR.
pub const FILES_CAP: u64 = 3000;

const NAMES: [&str; 20] = [
    "octocat", "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
    "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
];

/// What a heavy PR has (before touches), each count drawn uniformly from its range. The
/// largest counts fit the id layout (4,096 items of a kind per PR) and the sha layout.
pub mod heavy {
    use std::ops::RangeInclusive;

    /// Changed files: always more than one page of 100.
    pub const FILES: RangeInclusive<u64> = 100..=1200;
    /// Commits: often more than one page of 100, never past the 250 served.
    pub const COMMITS: RangeInclusive<u64> = 20..=250;
    /// Reviews.
    pub const REVIEWS: RangeInclusive<u64> = 3..=40;
    /// Check runs on the head sha.
    pub const CHECK_RUNS: RangeInclusive<u64> = 2..=30;
    /// Review comments, and issue comments (each drawn on its own).
    pub const COMMENTS: RangeInclusive<u64> = 2..=30;
}

/// Kinds of ids (the `kind` in the id layout).
pub(super) mod kind {
    pub const PR: u64 = 0;
    pub const REVIEW: u64 = 1;
    pub const CHECK_RUN: u64 = 2;
    pub const CHECK_SUITE: u64 = 3;
    pub const REVIEW_COMMENT: u64 = 4;
    pub const ISSUE_COMMENT: u64 = 5;
    pub const LABEL: u64 = 6;
    pub const STATUS: u64 = 7;
}

/// Salts separating the random streams.
pub(super) mod salt {
    pub const STATE: u64 = 1;
    pub const TIME: u64 = 2;
    pub const AUTHOR: u64 = 3;
    pub const COUNTS: u64 = 4;
    pub const SHA: u64 = 5;
    pub const FILE: u64 = 6;
    pub const REVIEW: u64 = 7;
    pub const COMMIT: u64 = 8;
    pub const CHECK: u64 = 9;
    pub const COMMENT: u64 = 10;
    pub const MISC: u64 = 11;
    pub const HEAVY: u64 = 12;
}

/// SplitMix64 finaliser: a good 64-bit mixing function.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The numeric id of the account `login` (case-insensitive): 8 digits from a hash of the
/// lower-cased login, the same for every repository it owns.
pub fn owner_id(login: &str) -> u64 {
    let h = login
        .to_ascii_lowercase()
        .bytes()
        .fold(0x0A11_CE5E_ED00_0001, |h, b| mix(h ^ u64::from(b)));
    10_000_000 + h % 90_000_000
}

/// `YYYY-MM-DDTHH:MM:SSZ` for epoch seconds (hand-rolled: chrono's formatter is slow in
/// debug builds, and this runs for every timestamp of every page).
pub fn ts(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The override recorded by `touch_pr` for one PR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touch {
    /// How many times the PR was touched.
    pub count: u32,
    /// Epoch seconds of the latest touch (the new `updated_at`).
    pub at: i64,
}

/// A GitHub user (or bot).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login.
    pub login: String,
    /// Numeric id.
    pub id: u64,
    /// `type: "Bot"` rather than `"User"`.
    pub bot: bool,
}

impl User {
    /// User `k` (0..40) of the shared pool: ids are unique and stable.
    pub fn pool(k: u64) -> User {
        let k = k % 40;
        let base = NAMES[(k % 20) as usize];
        let login = if k < 20 {
            base.to_string()
        } else {
            format!("{base}-dev")
        };
        User {
            login,
            id: 583_000 + k * 1_117,
            bot: false,
        }
    }

    /// The dependabot bot.
    pub fn dependabot() -> User {
        User {
            login: "dependabot[bot]".into(),
            id: 49_699_333,
            bot: true,
        }
    }

    /// GitHub's simple-user JSON.
    pub fn json(&self) -> Value {
        json!({
            "login": self.login,
            "id": self.id,
            "node_id": format!("MDQ6VXNlcj{}", self.id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", self.id),
            "gravatar_id": "",
            "url": format!("{API}/users/{}", self.login),
            "html_url": format!("{WEB}/{}", self.login),
            "type": if self.bot { "Bot" } else { "User" },
            "site_admin": false,
        })
    }
}

/// A pull request's scalar data (no lists).
#[derive(Clone, Debug)]
pub struct Pr {
    /// Number.
    pub number: u64,
    /// Title (with the touch suffix).
    pub title: String,
    /// Body (GitHub sends null for an empty body).
    pub body: Option<String>,
    /// State open (else closed).
    pub open: bool,
    /// Draft.
    pub draft: bool,
    /// Created, epoch seconds.
    pub created: i64,
    /// Updated, epoch seconds.
    pub updated: i64,
    /// Closed, epoch seconds.
    pub closed: Option<i64>,
    /// Merged, epoch seconds (= closed for merged PRs).
    pub merged_at: Option<i64>,
    /// Author; None for a deleted account.
    pub author: Option<User>,
    /// Head branch.
    pub head_ref: String,
    /// Head sha (the last of its commits).
    pub head_sha: String,
    /// Base sha.
    pub base_sha: String,
    /// Merge commit sha (merged PRs).
    pub merge_commit_sha: Option<String>,
    /// Real number of commits (may exceed the 250 served).
    pub commits_total: u64,
    /// Reviews before touches.
    pub reviews_base: u64,
    /// Files before touches.
    pub files_base: u64,
    /// Check runs on the head sha.
    pub check_runs: u64,
    /// Review comments.
    pub review_comments: u64,
    /// Issue comments.
    pub issue_comments: u64,
    /// Touch override.
    pub touch: Touch,
}

impl Pr {
    /// Reviews served (base + one per touch).
    pub fn reviews(&self) -> u64 {
        self.reviews_base + self.touch.count as u64
    }
    /// Files of the PR, uncapped (base + one per touch).
    pub fn files_total(&self) -> u64 {
        self.files_base + self.touch.count as u64
    }
    /// Commits served (capped at 250).
    pub fn commits_served(&self) -> u64 {
        self.commits_total.min(COMMITS_CAP)
    }
    /// Files served (capped at 3,000).
    pub fn files_served(&self) -> u64 {
        self.files_total().min(FILES_CAP)
    }
}

/// How many of each item a PR has, before touches.
struct Counts {
    commits: u64,
    files: u64,
    reviews: u64,
    check_runs: u64,
    review_comments: u64,
    issue_comments: u64,
}

/// A changed file of a PR.
#[derive(Clone, Debug)]
pub struct File {
    /// Path.
    pub filename: String,
    /// added, modified, removed or renamed.
    pub status: &'static str,
    /// Added lines.
    pub additions: u64,
    /// Deleted lines.
    pub deletions: u64,
    /// Blob sha.
    pub sha: String,
    /// Old path of a renamed file.
    pub previous_filename: Option<String>,
}

/// A repository as served: its spec, its index in the config (for unique ids), and its
/// name parts.
#[derive(Clone, Debug)]
pub struct Repo {
    /// Position in `FakeConfig::repos`.
    pub index: usize,
    /// High bits of every id of this repository (1..=65535).
    pub id_prefix: u64,
    /// The spec.
    pub spec: RepoSpec,
    /// Owner login.
    pub owner: String,
    /// Repository name.
    pub name: String,
    /// Whether the owner is a user (listed in `FakeConfig::users`) rather than an
    /// organisation.
    pub owner_is_user: bool,
    /// `created_at`, epoch seconds: 30 days before [`BASE_EPOCH`] plus one minute per
    /// position, so a repository added later is created later.
    pub created: i64,
    /// The repository JSON, built once (it is embedded twice in every pull).
    pub(super) repo_value: Value,
}

impl Repo {
    /// The preferred id prefix of a repository id (callers probe on collision).
    pub fn preferred_id_prefix(repo_id: u64) -> u64 {
        mix(repo_id) % 65_535 + 1
    }

    /// Wraps a spec; `full_name` must be `owner/name` and `pr_count` below 2^24.
    pub fn new(index: usize, spec: RepoSpec, id_prefix: u64, owner_is_user: bool) -> Repo {
        assert!(
            spec.pr_count < 1 << 24,
            "pr_count too large for the id layout"
        );
        assert!((1..=65_535).contains(&id_prefix), "id prefix out of range");
        let (owner, name) = spec
            .full_name
            .split_once('/')
            .unwrap_or_else(|| panic!("repo name must be owner/name: {}", spec.full_name));
        let mut repo = Repo {
            index,
            id_prefix,
            owner: owner.to_string(),
            name: name.to_string(),
            spec,
            owner_is_user,
            created: BASE_EPOCH - 86_400 * 30 + 60 * index as i64,
            repo_value: Value::Null,
        };
        repo.repo_value = repo.build_repo_json();
        repo
    }

    pub(super) fn h(&self, n: u64, salt: u64, i: u64) -> u64 {
        mix(mix(mix(self.spec.seed ^ salt.wrapping_mul(0x1000_0000_01B3)) ^ n) ^ i)
    }

    pub(super) fn pct(&self, n: u64, salt: u64, i: u64) -> u64 {
        self.h(n, salt, i) % 100
    }

    /// A globally unique, stable id (`j`, the item's index among its kind in PR `n`, must
    /// be below 4,096).
    pub fn id(&self, n: u64, kind: u64, j: u64) -> u64 {
        debug_assert!(j <= 0xfff, "item {j} of PR #{n} overflows the id layout");
        (self.id_prefix << 39) | (n << 15) | (kind << 12) | (j & 0xfff)
    }

    /// Whether PR `n` exists.
    pub fn has_pr(&self, n: u64) -> bool {
        n >= 1 && n <= self.spec.pr_count as u64
    }

    /// Whether PR `n` is heavy: never #1-#7 (they keep their special shapes), else about
    /// `heavy_percent` % of PRs.
    pub fn is_heavy(&self, n: u64) -> bool {
        let percent = u64::from(self.spec.heavy_percent);
        n > 7 && percent > 0 && self.pct(n, salt::HEAVY, 0) < percent
    }

    /// The counts of PR `n`'s items. A light PR's draws are those made before heavy PRs
    /// existed and must stay so: a repository without heavy PRs serves the same data as ever.
    fn counts(&self, n: u64) -> Counts {
        if self.is_heavy(n) {
            let draw = |i: u64, range: std::ops::RangeInclusive<u64>| {
                range.start() + self.h(n, salt::HEAVY, i) % (range.end() - range.start() + 1)
            };
            return Counts {
                commits: draw(1, heavy::COMMITS),
                files: draw(2, heavy::FILES),
                reviews: draw(3, heavy::REVIEWS),
                check_runs: draw(4, heavy::CHECK_RUNS),
                review_comments: draw(5, heavy::COMMENTS),
                issue_comments: draw(6, heavy::COMMENTS),
            };
        }
        let draw = |i: u64| self.h(n, salt::COUNTS, i);
        Counts {
            commits: match n {
                3 => 300,
                6 => 120,
                _ => 1 + draw(0) % 8,
            },
            files: match n {
                5 => 150,
                _ => 1 + draw(1) % 10,
            },
            reviews: draw(2) % 5,
            check_runs: draw(3) % 5,
            review_comments: draw(4) % 4,
            issue_comments: draw(5) % 4,
        }
    }

    /// Whether PR `n` is open (cheap; used to filter the list).
    pub fn is_open(&self, n: u64) -> bool {
        self.pct(n, salt::STATE, 0) < 12
    }

    /// Whether PR `n` is merged (cheap; used to filter GraphQL's list by state).
    pub fn is_merged(&self, n: u64) -> bool {
        !self.is_open(n) && self.pct(n, salt::STATE, 1) < 80
    }

    fn created(&self, n: u64) -> i64 {
        BASE_EPOCH + n as i64 * 3600 + (self.h(n, salt::TIME, 0) % 1800) as i64
    }

    fn closed(&self, n: u64) -> Option<i64> {
        if self.is_open(n) {
            None
        } else {
            Some(self.created(n) + 600 + (self.h(n, salt::TIME, 1) % (14 * 86_400)) as i64)
        }
    }

    /// `updated_at` of PR `n` in epoch seconds (cheap; used to sort the list).
    pub fn updated(&self, n: u64, touch: Touch) -> i64 {
        if touch.count > 0 {
            return touch.at;
        }
        match self.closed(n) {
            Some(c) => c + (self.h(n, salt::TIME, 2) % (2 * 86_400)) as i64,
            None => self.created(n) + (self.h(n, salt::TIME, 3) % (30 * 86_400)) as i64,
        }
    }

    /// A commit sha of PR `n`: 24 hashed hex digits, then `{i:08x}{n:08x}`.
    pub fn commit_sha(&self, n: u64, i: u64) -> String {
        let a = self.h(n, salt::SHA, i);
        let b = self.h(n, salt::SHA, i ^ 0xffff_ffff) as u32;
        format!("{a:016x}{b:08x}{:08x}{:08x}", i as u32, n as u32)
    }

    pub(super) fn other_sha(&self, n: u64, what: u64) -> String {
        let a = self.h(n, salt::MISC, what);
        let b = self.h(n, salt::MISC, what + 1000);
        format!("{a:016x}{b:016x}{:08x}", (a ^ b) as u32)
    }

    /// Builds PR `n` (which must exist).
    pub fn pr(&self, n: u64, touch: Touch) -> Pr {
        let open = self.is_open(n);
        let created = self.created(n);
        let closed = self.closed(n);
        let merged = self.is_merged(n);
        let author = if n == 7 || self.pct(n, salt::AUTHOR, 0) < 3 {
            None
        } else if self.pct(n, salt::AUTHOR, 1) < 5 {
            Some(User::dependabot())
        } else {
            Some(User::pool(self.h(n, salt::AUTHOR, 2)))
        };
        let mut title = match n {
            1 => "'; DROP TABLE jobs;--".to_string(),
            2 => "Ünïcödé wïdget 🚀 — 修复 naïve café ✅".to_string(),
            4 => "Fix \"quoted\" widget's `edge` case\nsecond line\r\nthird line\twith tab"
                .to_string(),
            _ => format!("Fix widget {n}"),
        };
        match touch.count {
            0 => {}
            1 => title.push_str(" (edited)"),
            c => title.push_str(&format!(" (edited {c})")),
        }
        let body = match n {
            4 => Some("He said \"hi\"\nand left.\r\n'single' and \\backslash\\".to_string()),
            _ if self.pct(n, salt::MISC, 0) < 20 => None,
            _ => Some(format!("Body of widget {n}.\n\nCloses #{}", n + 1000)),
        };
        let counts = self.counts(n);
        let head_ref = match &author {
            Some(u) if u.bot => format!("dependabot/cargo/widget-{n}"),
            _ => format!("feature/widget-{n}"),
        };
        Pr {
            number: n,
            title,
            body,
            open,
            draft: open && self.pct(n, salt::STATE, 2) < 10,
            created,
            updated: self.updated(n, touch),
            closed,
            merged_at: if merged { closed } else { None },
            author,
            head_ref,
            head_sha: self.commit_sha(n, counts.commits - 1),
            base_sha: self.other_sha(n / 50, 1),
            merge_commit_sha: if merged {
                Some(self.other_sha(n, 2))
            } else {
                None
            },
            commits_total: counts.commits,
            reviews_base: counts.reviews,
            files_base: counts.files,
            check_runs: counts.check_runs,
            review_comments: counts.review_comments,
            issue_comments: counts.issue_comments,
            touch,
        }
    }

    /// File `k` of a PR (`k < files_total`); files past `files_base` come from touches.
    pub fn file(&self, pr: &Pr, k: u64) -> File {
        let n = pr.number;
        if k >= pr.files_base {
            let t = k - pr.files_base + 1;
            return File {
                filename: format!("CHANGELOG.d/pr-{n}-edit-{t}.md"),
                status: "added",
                additions: 1 + t,
                deletions: 0,
                sha: self.other_sha(n, 100 + t),
                previous_filename: None,
            };
        }
        let hh = self.h(n, salt::FILE, k);
        let (dir, ext) = [
            ("src", "rs"),
            ("tests", "rs"),
            ("docs", "md"),
            ("crates/core/src", "rs"),
            ("scripts", "sh"),
        ][(hh % 5) as usize];
        let filename = if n == 2 && k == 0 {
            "docs/ünïcode 文件 (2).md".to_string()
        } else {
            format!("{dir}/widget_{n}_{k}.{ext}")
        };
        let p = (hh >> 8) % 100;
        let status = match p {
            0..=59 => "modified",
            60..=79 => "added",
            80..=89 => "removed",
            _ => "renamed",
        };
        let additions = if status == "removed" {
            0
        } else {
            1 + (hh >> 16) % 80
        };
        let deletions = if status == "added" {
            0
        } else {
            (hh >> 24) % 40
        };
        File {
            previous_filename: (status == "renamed").then(|| format!("old/{filename}")),
            filename,
            status,
            additions,
            deletions,
            sha: self.other_sha(n, 10_000 + k),
        }
    }

    /// Sum of additions and deletions over all the PR's files.
    pub fn line_totals(&self, pr: &Pr) -> (u64, u64) {
        (0..pr.files_total()).fold((0, 0), |(a, d), k| {
            let f = self.file(pr, k);
            (a + f.additions, d + f.deletions)
        })
    }

    /// Finds the PR and commit index a sha belongs to: `Some((n, i))` if it is commit `i` of
    /// existing PR `n` (served or not).
    pub fn find_commit(&self, sha: &str, touch_of: impl Fn(u64) -> Touch) -> Option<(u64, u64)> {
        if sha.len() != 40 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let sha = sha.to_ascii_lowercase();
        let i = u64::from_str_radix(&sha[24..32], 16).ok()?;
        let n = u64::from_str_radix(&sha[32..40], 16).ok()?;
        if !self.has_pr(n) {
            return None;
        }
        let pr = self.pr(n, touch_of(n));
        (i < pr.commits_total && self.commit_sha(n, i) == sha).then_some((n, i))
    }
}
