//! An owner's repositories: `GET /orgs/{org}/repos` and `GET /users/{username}/repos`, with
//! the parameters GitHub documents for them
//! (<https://docs.github.com/rest/repos/repos#list-organization-repositories> and
//! `#list-repositories-for-a-user`):
//!
//! - `type`: for an organisation `all` (default), `public`, `private`, `forks`, `sources`,
//!   `member`, `internal`; for a user `owner` (default), `all`, `member`. Every fake
//!   repository is public and no token is a member or collaborator anywhere, so `private`,
//!   `internal` and `member` list nothing, and `public`, `all` and `owner` everything;
//! - `sort`: `created`, `updated`, `pushed`, `full_name`; default `created` for an
//!   organisation, `full_name` for a user;
//! - `direction`: `asc` or `desc`; default `asc` when sorting by `full_name`, else `desc`;
//! - `per_page` (default 30, at most 100) and `page`, with a `link` header like the other
//!   lists'. As on GitHub, its URLs name the owner by id: `/organizations/{id}/repos` and
//!   `/user/{id}/repos`, which are served too.
//!
//! Unknown values of `type`, `sort` and `direction` are taken as their defaults, as the
//! pull list does. An owner is known when it owns a configured repository (visible or not)
//! or is listed in `FakeConfig::users`; `/orgs/{login}/repos` answers 404 for a user, and
//! both answer 404 for an unknown login. Repositories hidden from the request's token are
//! left out.

#[cfg(test)]
mod tests;

use std::collections::HashSet;

use serde_json::Value;

use super::api::{Answer, LinkCtx, Listing, OwnerRef};
use super::data::{owner_id, Repo};

/// An account that owns repositories.
struct Owner {
    /// Login, as configured.
    login: String,
    /// Numeric id ([`owner_id`]).
    id: u64,
    /// A user (listed in `FakeConfig::users`) rather than an organisation.
    user: bool,
}

/// The account `by` names among the owners of `repos` and the configured `users`.
fn find_owner(repos: &[Repo], users: &HashSet<String>, by: &OwnerRef) -> Option<Owner> {
    let mut known = users
        .iter()
        .map(String::as_str)
        .chain(repos.iter().map(|r| r.owner.as_str()));
    let login = known.find(|login| match by {
        OwnerRef::Login(wanted) => login.eq_ignore_ascii_case(wanted),
        OwnerRef::Id(id) => owner_id(login) == *id,
    })?;
    Some(Owner {
        login: login.to_string(),
        id: owner_id(login),
        user: users.iter().any(|u| u.eq_ignore_ascii_case(login)),
    })
}

/// Whether `repo` is listed for the requested `type` (see the module docs).
fn type_admits(listing: Listing, kind: Option<&str>, repo: &Repo) -> bool {
    match (listing, kind) {
        (Listing::Org, Some("forks")) => repo.spec.fork,
        (Listing::Org, Some("sources")) => !repo.spec.fork,
        (Listing::Org, Some("private" | "internal" | "member")) => false,
        (Listing::User, Some("member")) => false,
        _ => true,
    }
}

/// The answer to a listing of the repositories of the owner `by` names, as seen by `token`.
pub fn answer(
    repos: &[Repo],
    users: &HashSet<String>,
    listing: Listing,
    by: &OwnerRef,
    token: Option<&str>,
    ctx: &LinkCtx<'_>,
) -> Answer {
    let Some(owner) = find_owner(repos, users, by) else {
        return Answer::not_found();
    };
    if listing == Listing::Org && owner.user {
        return Answer::not_found();
    }
    let kind = ctx.param("type");
    let mut listed: Vec<&Repo> = repos
        .iter()
        .filter(|r| r.owner.eq_ignore_ascii_case(&owner.login))
        .filter(|r| !r.spec.is_hidden_from(token))
        .filter(|r| type_admits(listing, kind, r))
        .collect();
    let default_sort = match listing {
        Listing::Org => "created",
        Listing::User => "full_name",
    };
    let sort = match ctx.param("sort") {
        Some(s @ ("created" | "updated" | "pushed" | "full_name")) => s,
        _ => default_sort,
    };
    let desc = match ctx.param("direction") {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort != "full_name",
    };
    match sort {
        "full_name" => {
            listed.sort_by_cached_key(|r| (r.spec.full_name.to_ascii_lowercase(), r.spec.id))
        }
        "updated" | "pushed" => listed.sort_by_key(|r| (r.pushed(), r.spec.id)),
        _ => listed.sort_by_key(|r| (r.created, r.spec.id)),
    }
    if desc {
        listed.reverse();
    }
    let path = match listing {
        Listing::Org => format!("/organizations/{}/repos", owner.id),
        Listing::User => format!("/user/{}/repos", owner.id),
    };
    let (range, link) = ctx.page_of(listed.len() as u64, &path);
    let items: Vec<Value> = listed[range.start as usize..range.end as usize]
        .iter()
        .map(|r| r.repo_json())
        .collect();
    Answer::ok(&Value::Array(items), link)
}
