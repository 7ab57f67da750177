//! The part of GitHub's GraphQL schema the fake serves, as a table: which fields each type
//! has, what they return, and which arguments they take.
//!
//! Names and types are GitHub's (`tests/fake_github_selftest.rs` checks every row against
//! GitHub's published schema when that file is present); the fake needs no schema file at
//! run time. Anything not in the table is answered as GitHub answers an unknown field.

/// One field of an object or interface type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDef {
    /// The type that has the field (`PullRequest`).
    pub parent: &'static str,
    /// The field's name (`commits`).
    pub name: &'static str,
    /// The return type in GraphQL notation (`PullRequestCommitConnection!`, `[PullRequest]`).
    pub ty: &'static str,
    /// Arguments, space-separated; a trailing `!` marks a required one (`owner! name!`).
    pub args: &'static str,
}

impl FieldDef {
    /// The named type under any list and non-null wrappers (`PullRequest`).
    pub fn named_type(&self) -> &'static str {
        self.ty.trim_matches(|c| c == '[' || c == ']' || c == '!')
    }

    /// Whether the field may not be null (its value's nullness then spreads to the parent).
    pub fn non_null(&self) -> bool {
        self.ty.ends_with('!')
    }

    /// Whether the field returns a list.
    pub fn is_list(&self) -> bool {
        self.ty.starts_with('[')
    }

    /// Whether the field is a paginated connection (needs `first` or `last`).
    pub fn is_connection(&self) -> bool {
        self.named_type().ends_with("Connection")
    }

    /// `(name, required)` of each argument.
    pub fn arguments(&self) -> impl Iterator<Item = (&'static str, bool)> {
        self.args
            .split_whitespace()
            .map(|a| (a.trim_end_matches('!'), a.ends_with('!')))
    }
}

/// Every field the fake resolves (`__typename` aside, which every type has).
pub const FIELDS: &[FieldDef] = &[
    f("Query", "rateLimit", "RateLimit", "dryRun"),
    f(
        "Query",
        "repository",
        "Repository",
        "owner! name! followRenames",
    ),
    f("Query", "node", "Node", "id!"),
    f("Query", "viewer", "User!", ""),
    f("RateLimit", "cost", "Int!", ""),
    f("RateLimit", "limit", "Int!", ""),
    f("RateLimit", "nodeCount", "Int!", ""),
    f("RateLimit", "remaining", "Int!", ""),
    f("RateLimit", "resetAt", "DateTime!", ""),
    f("RateLimit", "used", "Int!", ""),
    f("Repository", "id", "ID!", ""),
    f("Repository", "databaseId", "Int", ""),
    f("Repository", "name", "String!", ""),
    f("Repository", "nameWithOwner", "String!", ""),
    f("Repository", "url", "URI!", ""),
    f(
        "Repository",
        "pullRequests",
        "PullRequestConnection!",
        CONN_STATES_ORDER,
    ),
    f("Repository", "pullRequest", "PullRequest", "number!"),
    f("Repository", "object", "GitObject", "oid expression"),
    f("PullRequest", "id", "ID!", ""),
    f("PullRequest", "number", "Int!", ""),
    f("PullRequest", "fullDatabaseId", "BigInt", ""),
    f("PullRequest", "databaseId", "Int", ""),
    f("PullRequest", "title", "String!", ""),
    f("PullRequest", "body", "String!", ""),
    f("PullRequest", "state", "PullRequestState!", ""),
    f("PullRequest", "isDraft", "Boolean!", ""),
    f("PullRequest", "createdAt", "DateTime!", ""),
    f("PullRequest", "updatedAt", "DateTime!", ""),
    f("PullRequest", "closedAt", "DateTime", ""),
    f("PullRequest", "mergedAt", "DateTime", ""),
    f("PullRequest", "merged", "Boolean!", ""),
    f("PullRequest", "additions", "Int!", ""),
    f("PullRequest", "deletions", "Int!", ""),
    f("PullRequest", "changedFiles", "Int!", ""),
    f("PullRequest", "headRefOid", "GitObjectID!", ""),
    f("PullRequest", "headRefName", "String!", ""),
    f("PullRequest", "baseRefOid", "GitObjectID!", ""),
    f("PullRequest", "baseRefName", "String!", ""),
    f("PullRequest", "url", "URI!", ""),
    f("PullRequest", "author", "Actor", ""),
    f("PullRequest", "repository", "Repository!", ""),
    f(
        "PullRequest",
        "commits",
        "PullRequestCommitConnection!",
        CONN,
    ),
    f(
        "PullRequest",
        "reviews",
        "PullRequestReviewConnection",
        CONN_STATES,
    ),
    f(
        "PullRequest",
        "files",
        "PullRequestChangedFileConnection",
        CONN,
    ),
    f("PullRequest", "comments", "IssueCommentConnection!", CONN),
    f("PullRequest", "statusCheckRollup", "StatusCheckRollup", ""),
    f("PullRequestCommit", "id", "ID!", ""),
    f("PullRequestCommit", "url", "URI!", ""),
    f("PullRequestCommit", "commit", "Commit!", ""),
    f("Commit", "id", "ID!", ""),
    f("Commit", "oid", "GitObjectID!", ""),
    f("Commit", "abbreviatedOid", "String!", ""),
    f("Commit", "url", "URI!", ""),
    f("Commit", "message", "String!", ""),
    f("Commit", "messageHeadline", "String!", ""),
    f("Commit", "authoredDate", "DateTime!", ""),
    f("Commit", "committedDate", "DateTime!", ""),
    f("Commit", "author", "GitActor", ""),
    f("Commit", "committer", "GitActor", ""),
    f("Commit", "statusCheckRollup", "StatusCheckRollup", ""),
    f("GitActor", "name", "String", ""),
    f("GitActor", "email", "String", ""),
    f("GitActor", "date", "GitTimestamp", ""),
    f("GitActor", "user", "User", ""),
    f("PullRequestReview", "id", "ID!", ""),
    f("PullRequestReview", "fullDatabaseId", "BigInt", ""),
    f("PullRequestReview", "databaseId", "Int", ""),
    f("PullRequestReview", "url", "URI!", ""),
    f("PullRequestReview", "author", "Actor", ""),
    f("PullRequestReview", "state", "PullRequestReviewState!", ""),
    f("PullRequestReview", "submittedAt", "DateTime", ""),
    f("PullRequestReview", "body", "String!", ""),
    f("PullRequestChangedFile", "path", "String!", ""),
    f("PullRequestChangedFile", "additions", "Int!", ""),
    f("PullRequestChangedFile", "deletions", "Int!", ""),
    f("PullRequestChangedFile", "changeType", "PatchStatus!", ""),
    f("IssueComment", "id", "ID!", ""),
    f("IssueComment", "fullDatabaseId", "BigInt", ""),
    f("IssueComment", "databaseId", "Int", ""),
    f("IssueComment", "url", "URI!", ""),
    f("IssueComment", "author", "Actor", ""),
    f("IssueComment", "createdAt", "DateTime!", ""),
    f("IssueComment", "body", "String!", ""),
    f("StatusCheckRollup", "id", "ID!", ""),
    f("StatusCheckRollup", "state", "StatusState!", ""),
    f("StatusCheckRollup", "commit", "Commit", ""),
    f(
        "StatusCheckRollup",
        "contexts",
        "StatusCheckRollupContextConnection!",
        CONN,
    ),
    f("CheckRun", "id", "ID!", ""),
    f("CheckRun", "databaseId", "Int", ""),
    f("CheckRun", "url", "URI!", ""),
    f("CheckRun", "name", "String!", ""),
    f("CheckRun", "status", "CheckStatusState!", ""),
    f("CheckRun", "conclusion", "CheckConclusionState", ""),
    f("CheckRun", "startedAt", "DateTime", ""),
    f("CheckRun", "completedAt", "DateTime", ""),
    f("CheckRun", "detailsUrl", "URI", ""),
    f("StatusContext", "id", "ID!", ""),
    f("StatusContext", "context", "String!", ""),
    f("StatusContext", "state", "StatusState!", ""),
    f("StatusContext", "description", "String", ""),
    f("StatusContext", "targetUrl", "URI", ""),
    f("StatusContext", "createdAt", "DateTime!", ""),
    f("User", "id", "ID!", ""),
    f("User", "databaseId", "Int", ""),
    f("User", "login", "String!", ""),
    f("User", "url", "URI!", ""),
    f("Bot", "id", "ID!", ""),
    f("Bot", "databaseId", "Int", ""),
    f("Bot", "login", "String!", ""),
    f("Bot", "url", "URI!", ""),
    f("Actor", "login", "String!", ""),
    f("Actor", "url", "URI!", ""),
    f("Node", "id", "ID!", ""),
    f("GitObject", "id", "ID!", ""),
    f("GitObject", "oid", "GitObjectID!", ""),
    f("GitObject", "abbreviatedOid", "String!", ""),
    f("PageInfo", "hasNextPage", "Boolean!", ""),
    f("PageInfo", "hasPreviousPage", "Boolean!", ""),
    f("PageInfo", "startCursor", "String", ""),
    f("PageInfo", "endCursor", "String", ""),
    f("PullRequestConnection", "totalCount", "Int!", ""),
    f("PullRequestConnection", "pageInfo", "PageInfo!", ""),
    f("PullRequestConnection", "nodes", "[PullRequest]", ""),
    f("PullRequestConnection", "edges", "[PullRequestEdge]", ""),
    f("PullRequestEdge", "cursor", "String!", ""),
    f("PullRequestEdge", "node", "PullRequest", ""),
    f("PullRequestCommitConnection", "totalCount", "Int!", ""),
    f("PullRequestCommitConnection", "pageInfo", "PageInfo!", ""),
    f(
        "PullRequestCommitConnection",
        "nodes",
        "[PullRequestCommit]",
        "",
    ),
    f(
        "PullRequestCommitConnection",
        "edges",
        "[PullRequestCommitEdge]",
        "",
    ),
    f("PullRequestCommitEdge", "cursor", "String!", ""),
    f("PullRequestCommitEdge", "node", "PullRequestCommit", ""),
    f("PullRequestReviewConnection", "totalCount", "Int!", ""),
    f("PullRequestReviewConnection", "pageInfo", "PageInfo!", ""),
    f(
        "PullRequestReviewConnection",
        "nodes",
        "[PullRequestReview]",
        "",
    ),
    f(
        "PullRequestReviewConnection",
        "edges",
        "[PullRequestReviewEdge]",
        "",
    ),
    f("PullRequestReviewEdge", "cursor", "String!", ""),
    f("PullRequestReviewEdge", "node", "PullRequestReview", ""),
    f("PullRequestChangedFileConnection", "totalCount", "Int!", ""),
    f(
        "PullRequestChangedFileConnection",
        "pageInfo",
        "PageInfo!",
        "",
    ),
    f(
        "PullRequestChangedFileConnection",
        "nodes",
        "[PullRequestChangedFile]",
        "",
    ),
    f(
        "PullRequestChangedFileConnection",
        "edges",
        "[PullRequestChangedFileEdge]",
        "",
    ),
    f("PullRequestChangedFileEdge", "cursor", "String!", ""),
    f(
        "PullRequestChangedFileEdge",
        "node",
        "PullRequestChangedFile",
        "",
    ),
    f("IssueCommentConnection", "totalCount", "Int!", ""),
    f("IssueCommentConnection", "pageInfo", "PageInfo!", ""),
    f("IssueCommentConnection", "nodes", "[IssueComment]", ""),
    f("IssueCommentConnection", "edges", "[IssueCommentEdge]", ""),
    f("IssueCommentEdge", "cursor", "String!", ""),
    f("IssueCommentEdge", "node", "IssueComment", ""),
    f(
        "StatusCheckRollupContextConnection",
        "totalCount",
        "Int!",
        "",
    ),
    f(
        "StatusCheckRollupContextConnection",
        "pageInfo",
        "PageInfo!",
        "",
    ),
    f(
        "StatusCheckRollupContextConnection",
        "nodes",
        "[StatusCheckRollupContext]",
        "",
    ),
    f(
        "StatusCheckRollupContextConnection",
        "edges",
        "[StatusCheckRollupContextEdge]",
        "",
    ),
    f("StatusCheckRollupContextEdge", "cursor", "String!", ""),
    f(
        "StatusCheckRollupContextEdge",
        "node",
        "StatusCheckRollupContext",
        "",
    ),
    f(
        "StatusCheckRollupContextConnection",
        "checkRunCount",
        "Int!",
        "",
    ),
    f(
        "StatusCheckRollupContextConnection",
        "statusContextCount",
        "Int!",
        "",
    ),
];

/// Interfaces and unions, with the object types of the fake that belong to them.
pub const ABSTRACT: &[(&str, &[&str])] = &[
    ("Actor", &["User", "Bot"]),
    ("GitObject", &["Commit"]),
    ("StatusCheckRollupContext", &["CheckRun", "StatusContext"]),
    (
        "Node",
        &[
            "Repository",
            "PullRequest",
            "PullRequestCommit",
            "Commit",
            "PullRequestReview",
            "IssueComment",
            "StatusCheckRollup",
            "CheckRun",
            "StatusContext",
            "User",
            "Bot",
        ],
    ),
];

/// Scalars and enums: types selected without a sub-selection.
pub const LEAVES: &[&str] = &[
    "String",
    "Int",
    "Boolean",
    "ID",
    "BigInt",
    "DateTime",
    "GitTimestamp",
    "GitObjectID",
    "URI",
    "PullRequestState",
    "PullRequestReviewState",
    "PatchStatus",
    "StatusState",
    "CheckStatusState",
    "CheckConclusionState",
];

const CONN: &str = "first last after before";
const CONN_STATES: &str = "first last after before states";
const CONN_STATES_ORDER: &str = "first last after before states orderBy";

const fn f(
    parent: &'static str,
    name: &'static str,
    ty: &'static str,
    args: &'static str,
) -> FieldDef {
    FieldDef {
        parent,
        name,
        ty,
        args,
    }
}

/// The field `name` of type `parent`, if the fake has it.
pub fn field(parent: &str, name: &str) -> Option<FieldDef> {
    FIELDS
        .iter()
        .find(|d| d.parent == parent && d.name == name)
        .copied()
}

/// Whether `name` is a type of the fake's schema (object, interface, union, leaf).
pub fn is_type(name: &str) -> bool {
    LEAVES.contains(&name) || is_abstract(name) || FIELDS.iter().any(|d| d.parent == name)
}

/// Whether `name` is an interface or a union.
pub fn is_abstract(name: &str) -> bool {
    ABSTRACT.iter().any(|(a, _)| *a == name)
}

/// Whether a fragment on `condition` applies to an object of concrete type `concrete`.
pub fn applies(condition: &str, concrete: &str) -> bool {
    condition == concrete
        || ABSTRACT
            .iter()
            .any(|(a, members)| *a == condition && members.contains(&concrete))
}
