//! The GitHub App endpoints, authenticated by the app's JWT (see [`super::apps`]):
//!
//! - `GET /app/installations` ("List installations for the authenticated app",
//!   <https://docs.github.com/rest/apps/apps#list-installations-for-the-authenticated-app>):
//!   the app's installations in GitHub's shape (`id`, `account` with `login`, `id` and
//!   `type`, `app_id`, `target_id`, `target_type`, `repository_selection`,
//!   `access_tokens_url`, `permissions`, `created_at`...), paged like the other lists
//!   (`per_page` 30 by default, at most 100, `page`, a `link` header);
//! - `POST /app/installations/{id}/access_tokens` ("Create an installation access token
//!   for an app"): 201 `{"token": "ghs_…", "expires_at": "…Z", "permissions": {…},
//!   "repository_selection": "all"}`, or 404 for an installation that is not the app's.
//!
//! Both also answer under `/api/v3`. A refused JWT gets GitHub's 401 (or 404 for an
//! unknown app id) and counts in `Stats::jwt_rejected`. These requests use no installation's
//! quota and carry no `x-ratelimit-*` headers, are exempt from faults and secondary limits,
//! and are logged with the JWT's fingerprint ([`super::apps::jwt_label`]) instead of the JWT.

use serde_json::{json, Value};

use super::api::{LinkCtx, DOCS};
use super::apps::{FakeApp, FakeInstallation, Refusal};
use super::data::{owner_id, ts};
use super::limits::{epoch_ms, json_body, Incoming, Reply, State, JSON};
use super::{FakeConfig, Outcome};

/// The permissions of every installation and of the tokens it mints: what seedq reads.
fn permissions() -> Value {
    json!({"metadata": "read", "pull_requests": "read", "contents": "read", "checks": "read"})
}

/// Which app endpoint a request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppRoute {
    /// `GET /app/installations`.
    Installations,
    /// `POST /app/installations/{id}/access_tokens`.
    AccessToken(u64),
}

/// An installation as `GET /app/installations` lists it. `base` is the API root the
/// request came to (`http://host` + `/api/v3` when used), for `access_tokens_url`.
fn installation_json(
    cfg: &FakeConfig,
    app: &FakeApp,
    inst: &FakeInstallation,
    base: &str,
) -> Value {
    let user = cfg
        .users
        .iter()
        .any(|u| u.eq_ignore_ascii_case(&inst.account));
    let kind = if user { "User" } else { "Organization" };
    let account_id = owner_id(&inst.account);
    let node = if user { "U_kgDO" } else { "O_kgDO" };
    // A fixed past instant per installation, so answers do not change between requests.
    let created = 1_600_000_000 + (inst.id % 100_000_000) as i64;
    let settings = if user {
        format!("https://github.com/settings/installations/{}", inst.id)
    } else {
        format!(
            "https://github.com/organizations/{}/settings/installations/{}",
            inst.account, inst.id
        )
    };
    json!({
        "id": inst.id,
        "client_id": app.client_id,
        "account": {
            "login": inst.account, "id": account_id,
            "node_id": format!("{node}{account_id:X}"), "type": kind,
            "url": format!("https://api.github.com/users/{}", inst.account),
            "html_url": format!("https://github.com/{}", inst.account),
            "site_admin": false,
        },
        "repository_selection": "all",
        "access_tokens_url": format!("{base}/app/installations/{}/access_tokens", inst.id),
        "repositories_url": format!("{base}/installation/repositories"),
        "html_url": settings,
        "app_id": app.id,
        "app_slug": format!("fake-app-{}", app.id),
        "target_id": account_id,
        "target_type": kind,
        "permissions": permissions(),
        "events": [],
        "created_at": ts(created),
        "updated_at": ts(created),
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "suspended_by": null,
        "suspended_at": null,
    })
}

impl State {
    /// Answers a request to an app endpoint (see the module docs) and records it. `jwt` is
    /// the bearer token as sent; `req.token` must be its label, never the JWT itself.
    pub fn answer_app(
        &mut self,
        cfg: &FakeConfig,
        req: Incoming<'_>,
        route: AppRoute,
        jwt: Option<&str>,
        ctx: &LinkCtx<'_>,
    ) -> Reply {
        let (now_ms, request_id) = self.arrive(&req);
        self.stats.app_requests += 1;
        let mut headers = vec![
            ("content-type", JSON.to_string()),
            ("x-github-request-id", request_id),
            ("x-github-api-version-selected", "2022-11-28".to_string()),
        ];
        let verified = match jwt {
            Some(jwt) => self.apps.verify(jwt, (now_ms / 1000) as i64).cloned(),
            None => Err(Refusal {
                status: 401,
                message: "Requires authentication",
            }),
        };
        let app = match verified {
            Ok(app) => app,
            Err(refusal) => {
                self.stats.jwt_rejected += 1;
                let body = json!({
                    "message": refusal.message, "documentation_url": DOCS,
                    "status": refusal.status.to_string(),
                });
                let status = refusal.status;
                self.record(
                    cfg,
                    &req,
                    None,
                    status,
                    false,
                    Outcome::JwtRejected,
                    now_ms,
                    None,
                );
                return Reply::Respond {
                    status,
                    headers,
                    body: json_body(body),
                };
            }
        };
        let base = format!("{}{}", ctx.base, ctx.prefix);
        let (status, body) = match route {
            AppRoute::Installations => {
                let total = app.installations.len() as u64;
                let (range, link) = ctx.page_of(total, "/app/installations");
                let items: Vec<Value> = app.installations[range.start as usize..range.end as usize]
                    .iter()
                    .map(|inst| installation_json(cfg, &app, inst, &base))
                    .collect();
                if let Some(link) = link {
                    headers.push(("link", link));
                }
                (200, Value::Array(items))
            }
            AppRoute::AccessToken(installation) => {
                match self.apps.mint(app.id, installation, epoch_ms().max(now_ms)) {
                    Some((token, minted)) => {
                        self.stats.tokens_minted += 1;
                        *self
                            .stats
                            .tokens_minted_per_installation
                            .entry(installation)
                            .or_default() += 1;
                        let expires_at = ts((minted.expires_ms / 1000) as i64);
                        let body = json!({
                            "token": token,
                            "expires_at": expires_at,
                            "permissions": permissions(),
                            "repository_selection": "all",
                        });
                        (201, body)
                    }
                    None => (
                        404,
                        json!({"message": "Not Found", "documentation_url": DOCS, "status": "404"}),
                    ),
                }
            }
        };
        let account = Some(format!("app:{}", app.id));
        self.record(
            cfg,
            &req,
            account,
            status,
            false,
            Outcome::App,
            now_ms,
            None,
        );
        Reply::Respond {
            status,
            headers,
            body: json_body(body),
        }
    }
}
