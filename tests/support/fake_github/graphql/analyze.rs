//! Static analysis of a query before it runs, as GitHub does it: validation against the
//! fake's schema, pagination boundaries, the node limit and the cost.
//!
//! - Every connection needs `first` or `last`, within 1..=100
//!   (MISSING_PAGINATION_BOUNDARIES, EXCESSIVE_PAGINATION).
//! - Node limit: the sum over connections of the product of their `first`/`last` and those
//!   of every connection above them must stay within 500,000 (MAX_NODE_LIMIT_EXCEEDED).
//! - Cost: each connection needs as many requests as the product of the `first`/`last` of
//!   the connections above it (1 at the top); cost = round(sum / 100), half up, at least 1.
//!   Lookups such as `pullRequest(number:)` or `object(oid:)` are not connections.
//!
//! A query with any of these errors is answered 200 with `errors` and no `data`, and
//! costs nothing.

use apollo_compiler::ast::{self, Selection};
use apollo_compiler::Node;
use serde_json::{json, Value};

use super::document::Query;
use super::schema::{self, FieldDef};

/// The most nodes a query may ask for.
pub const MAX_NODES: u64 = 500_000;
/// The largest `first`/`last`.
pub const MAX_PAGE: i64 = 100;

/// A query that passed the analysis, with what it costs.
pub struct Plan {
    /// The query.
    pub query: Query,
    /// Requests its connections need (the sum GitHub's cost formula divides by 100).
    pub requests: u64,
    /// Points it costs: round(requests / 100), at least 1.
    pub cost: u32,
    /// Most nodes it may return (`rateLimit { nodeCount }`).
    pub nodes: u64,
    /// `rateLimit(dryRun: true)`: report the cost, run nothing, charge nothing.
    pub dry_run: bool,
}

/// GitHub's cost of a query whose connections need `requests` requests.
pub fn cost_of(requests: u64) -> u32 {
    u32::try_from(requests.saturating_add(50) / 100)
        .unwrap_or(u32::MAX)
        .max(1)
}

/// Validates `query` and computes its cost, or returns the errors to answer with.
pub fn analyze(query: Query) -> Result<Plan, Vec<Value>> {
    let mut walk = Walk {
        q: &query,
        errors: Vec::new(),
        limit_errors: Vec::new(),
        node_error: None,
        requests: 0,
        nodes: 0,
        stack: Vec::new(),
    };
    let root = query.root_type();
    walk.set(&query.operation.selection_set, root, &mut Vec::new(), 1);
    let Walk {
        errors,
        limit_errors,
        node_error,
        requests,
        nodes,
        ..
    } = walk;
    if !errors.is_empty() {
        return Err(errors);
    }
    if !limit_errors.is_empty() {
        return Err(limit_errors);
    }
    if let Some(e) = node_error {
        return Err(vec![e]);
    }
    let dry_run = query
        .collect(&[&query.operation.selection_set], root)
        .iter()
        .flat_map(|(_, fields)| fields)
        .any(|f| f.name.as_str() == "rateLimit" && query.arg(f, "dryRun") == Some(json!(true)));
    Ok(Plan {
        requests,
        cost: cost_of(requests),
        nodes,
        dry_run,
        query,
    })
}

/// The state of one walk over a query's selections.
struct Walk<'q> {
    /// The query.
    q: &'q Query,
    /// Validation errors (unknown fields, arguments, fragments, variables).
    errors: Vec<Value>,
    /// Pagination errors.
    limit_errors: Vec<Value>,
    /// The first place where the node limit was passed.
    node_error: Option<Value>,
    /// Requests the connections seen so far need.
    requests: u64,
    /// Nodes the connections seen so far may return.
    nodes: u64,
    /// Fragments being expanded (to catch cycles).
    stack: Vec<&'q str>,
}

fn path_json(path: &[String]) -> Value {
    Value::Array(path.iter().map(|p| Value::String(p.clone())).collect())
}

/// `1,234,567`.
fn delimited(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl<'q> Walk<'q> {
    /// Whether a fragment's type condition names a type; records the error if not.
    fn known_condition(&mut self, cond: &str, at: Value, path: &[String]) -> bool {
        if schema::is_type(cond) {
            return true;
        }
        let message = format!("No such type {cond}, so it can't be a fragment condition");
        self.error(
            "undefinedType",
            message,
            at,
            path,
            json!({"typeName": cond}),
        );
        false
    }

    fn error(&mut self, code: &str, message: String, at: Value, path: &[String], extra: Value) {
        let mut extensions = json!({ "code": code });
        if let (Value::Object(e), Value::Object(x)) = (&mut extensions, extra) {
            e.extend(x);
        }
        self.errors.push(json!({
            "path": path_json(path),
            "extensions": extensions,
            "locations": at,
            "message": message,
        }));
    }

    fn set(&mut self, set: &'q [Selection], parent: &str, path: &mut Vec<String>, product: u64) {
        for sel in set {
            match sel {
                Selection::Field(f) => self.field(f, parent, path, product),
                Selection::InlineFragment(frag) => {
                    if !self.q.included(&frag.directives) {
                        continue;
                    }
                    let cond = frag.type_condition.as_ref().map_or(parent, |t| t.as_str());
                    if !self.known_condition(cond, self.q.location(frag), path) {
                        continue;
                    }
                    self.set(&frag.selection_set, cond, path, product);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    let at = self.q.location(spread);
                    let Some(frag) = self.q.fragments.get(name) else {
                        let message = format!("Fragment {name} was used, but not defined");
                        self.error(
                            "useAndDefineFragment",
                            message,
                            at,
                            path,
                            json!({"fragmentName": name}),
                        );
                        continue;
                    };
                    if self.stack.contains(&name) {
                        let message = format!("Fragment {name} contains an infinite loop");
                        self.error(
                            "infiniteLoop",
                            message,
                            at,
                            path,
                            json!({"fragmentName": name}),
                        );
                        continue;
                    }
                    let cond = frag.type_condition.as_str();
                    if !self.known_condition(cond, self.q.location(frag), path) {
                        continue;
                    }
                    if self.q.included(&spread.directives) {
                        self.stack.push(name);
                        self.set(&frag.selection_set, cond, path, product);
                        self.stack.pop();
                    }
                }
            }
        }
    }

    fn field(
        &mut self,
        f: &'q Node<ast::Field>,
        parent: &str,
        path: &mut Vec<String>,
        product: u64,
    ) {
        if !self.q.included(&f.directives) {
            return;
        }
        let name = f.name.as_str();
        let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
        let at = self.q.location(f);
        path.push(key);
        for arg in &f.arguments {
            self.variables_declared(&arg.value, at.clone(), path);
        }
        if name == "__typename" {
            if !f.selection_set.is_empty() {
                let message = format!(
                    "Selections can't be made on scalars (field '__typename' returns String \
                     but has selections [{}])",
                    selected(f)
                );
                self.error(
                    "selectionMismatch",
                    message,
                    at,
                    path,
                    json!({"typeName": "String"}),
                );
            }
            path.pop();
            return;
        }
        let Some(def) = schema::field(parent, name) else {
            let message = format!("Field '{name}' doesn't exist on type '{parent}'");
            self.error(
                "undefinedField",
                message,
                at,
                path,
                json!({"typeName": parent, "fieldName": name}),
            );
            path.pop();
            return;
        };
        if self.arguments(f, &def, at.clone(), path) {
            let leaf = schema::LEAVES.contains(&def.named_type());
            let ty = def.ty;
            if leaf && !f.selection_set.is_empty() {
                let message = format!(
                    "Selections can't be made on scalars (field '{name}' returns {ty} but has \
                     selections [{}])",
                    selected(f)
                );
                self.error(
                    "selectionMismatch",
                    message,
                    at,
                    path,
                    json!({"nodeName": format!("field '{name}'"), "typeName": ty}),
                );
            } else if !leaf && f.selection_set.is_empty() {
                let message = format!(
                    "Field must have selections (field '{name}' returns {ty} but has no \
                     selections. Did you mean '{name} {{ ... }}'?)"
                );
                self.error(
                    "selectionMismatch",
                    message,
                    at,
                    path,
                    json!({"nodeName": format!("field '{name}'"), "typeName": ty}),
                );
            } else {
                let child = if def.is_connection() {
                    self.connection(f, name, at, path, product)
                } else {
                    product
                };
                self.set(&f.selection_set, def.named_type(), path, child);
            }
        }
        path.pop();
    }

    /// Checks the arguments of a field; false if any is wrong.
    fn arguments(
        &mut self,
        f: &Node<ast::Field>,
        def: &FieldDef,
        at: Value,
        path: &[String],
    ) -> bool {
        let name = def.name;
        let mut ok = true;
        for arg in &f.arguments {
            let arg_name = arg.name.as_str();
            if !def.arguments().any(|(a, _)| a == arg_name) {
                let message = format!("Field '{name}' doesn't accept argument '{arg_name}'");
                self.error(
                    "argumentNotAccepted",
                    message,
                    at.clone(),
                    path,
                    json!({"name": name, "typeName": "Field", "argumentName": arg_name}),
                );
                ok = false;
            }
        }
        let missing: Vec<&str> = def
            .arguments()
            .filter(|(a, required)| *required && self.q.arg(f, a).is_none_or(|v| v.is_null()))
            .map(|(a, _)| a)
            .collect();
        if !missing.is_empty() {
            let message = format!(
                "Field '{name}' is missing required arguments: {}",
                missing.join(", ")
            );
            self.error(
                "missingRequiredArguments",
                message,
                at.clone(),
                path,
                json!({"className": "Field", "name": name, "arguments": missing.join(", ")}),
            );
            ok = false;
        }
        for arg_name in ["states", "orderBy"] {
            if !def.arguments().any(|(a, _)| a == arg_name) {
                continue;
            }
            let Some(v) = self.q.arg(f, arg_name) else {
                continue;
            };
            let (expected, valid) = match (arg_name, name) {
                ("states", "reviews") => {
                    ("[PullRequestReviewState!]", enum_list(&v, REVIEW_STATES))
                }
                ("states", _) => ("[PullRequestState!]", enum_list(&v, PR_STATES)),
                _ => ("IssueOrder", issue_order(&v)),
            };
            if !valid {
                let message = format!(
                    "Argument '{arg_name}' on Field '{name}' has an invalid value ({v}). \
                     Expected type '{expected}'."
                );
                self.error(
                    "argumentLiteralsIncompatible",
                    message,
                    at.clone(),
                    path,
                    json!({"typeName": "Field", "argumentName": arg_name}),
                );
                ok = false;
            }
        }
        ok
    }

    fn variables_declared(&mut self, v: &ast::Value, at: Value, path: &[String]) {
        match v {
            ast::Value::Variable(name) if !self.q.declares(name.as_str()) => {
                let op = self
                    .q
                    .operation
                    .name
                    .as_ref()
                    .map_or("anonymous query".to_string(), |n| n.to_string());
                let message = format!("Variable ${name} is used by {op} but not declared");
                self.error(
                    "variableNotDefined",
                    message,
                    at,
                    path,
                    json!({"variableName": name.as_str()}),
                );
            }
            ast::Value::List(items) => items
                .iter()
                .for_each(|i| self.variables_declared(i, at.clone(), path)),
            ast::Value::Object(fields) => fields
                .iter()
                .for_each(|(_, i)| self.variables_declared(i, at.clone(), path)),
            _ => {}
        }
    }

    /// Checks `first`/`last` of a connection, adds its requests and nodes, and returns the
    /// product for the connections below it.
    fn connection(
        &mut self,
        f: &Node<ast::Field>,
        name: &str,
        at: Value,
        path: &[String],
        product: u64,
    ) -> u64 {
        let bound = |arg: &'static str| {
            self.q
                .arg(f, arg)
                .filter(|v| !v.is_null())
                .map(|v| (arg, v))
        };
        let Some((arg, value)) = bound("first").or_else(|| bound("last")) else {
            let message = format!(
                "You must provide a `first` or `last` value to properly paginate the `{name}` \
                 connection."
            );
            self.limit_error("MISSING_PAGINATION_BOUNDARIES", message, at, path);
            return product;
        };
        let n = match value.as_i64() {
            Some(n) if (1..=MAX_PAGE).contains(&n) => n as u64,
            Some(n) if n > MAX_PAGE => {
                let message = format!(
                    "Requesting {n} records on the `{name}` connection exceeds the `{arg}` limit \
                     of {MAX_PAGE} records."
                );
                self.limit_error("EXCESSIVE_PAGINATION", message, at, path);
                return product;
            }
            _ => {
                let message = format!(
                    "Requesting {value} records on the `{name}` connection is not supported: \
                     `{arg}` must be between 1 and {MAX_PAGE}."
                );
                self.limit_error("EXCESSIVE_PAGINATION", message, at, path);
                return product;
            }
        };
        self.requests = self.requests.saturating_add(product);
        let below = product.saturating_mul(n);
        self.nodes = self.nodes.saturating_add(below);
        if self.nodes > MAX_NODES && self.node_error.is_none() {
            self.node_error = Some(json!({
                "type": "MAX_NODE_LIMIT_EXCEEDED",
                "path": path_json(path),
                "locations": at,
                "message": format!(
                    "By the time this query traverses to the {name} connection, it is \
                     requesting up to {} possible nodes which exceeds the maximum limit of {}.",
                    delimited(self.nodes),
                    delimited(MAX_NODES)
                ),
            }));
        }
        below
    }

    fn limit_error(&mut self, kind: &str, message: String, at: Value, path: &[String]) {
        self.limit_errors.push(json!({
            "type": kind,
            "path": path_json(path),
            "locations": at,
            "message": message,
        }));
    }
}

/// Values of `PullRequestState`.
pub const PR_STATES: &[&str] = &["OPEN", "CLOSED", "MERGED"];
/// Values of `PullRequestReviewState`.
pub const REVIEW_STATES: &[&str] = &[
    "APPROVED",
    "CHANGES_REQUESTED",
    "COMMENTED",
    "DISMISSED",
    "PENDING",
];

/// Whether `v` is null, one of `allowed`, or a list of them.
fn enum_list(v: &Value, allowed: &[&str]) -> bool {
    let one = |v: &Value| v.as_str().is_some_and(|s| allowed.contains(&s));
    match v {
        Value::Null => true,
        Value::Array(items) => items.iter().all(one),
        single => one(single),
    }
}

/// Whether `v` is null or an `IssueOrder` input object.
fn issue_order(v: &Value) -> bool {
    let Value::Object(o) = v else {
        return v.is_null();
    };
    let is = |key: &str, allowed: &[&str]| {
        o.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| allowed.contains(&s))
    };
    o.keys().all(|k| k == "field" || k == "direction")
        && is("field", &["CREATED_AT", "UPDATED_AT", "COMMENTS"])
        && is("direction", &["ASC", "DESC"])
}

/// The names selected under a field, for error messages.
fn selected(f: &ast::Field) -> String {
    f.selection_set
        .iter()
        .filter_map(|s| match s {
            Selection::Field(x) => Some(x.name.to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join(", ")
}
