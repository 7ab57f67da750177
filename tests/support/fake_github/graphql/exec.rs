//! The executor: walks the operation's selections over the fake's objects, GraphQL's
//! way — fields collected and merged by response key, fragments applied by type, `null`
//! spreading up from a non-null field to its parent, field errors with their `path`.
//!
//! What each field of each type resolves to is in [`super::objects`] and
//! [`super::connection`]; this file knows nothing of pull requests.

use std::collections::HashMap;

use apollo_compiler::ast::{self, Selection};
use apollo_compiler::Node;
use serde::ser::{SerializeMap, SerializeSeq};
use serde_json::{json, Value};

use super::super::data::{Repo, Touch};
use super::super::FakeConfig;
use super::analyze::Plan;
use super::document::Query;
use super::objects::Obj;
use super::schema;

/// A response value that keeps fields in query order (serde_json's maps sort their keys;
/// GitHub answers in the order the query asks).
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    /// `null`.
    Null,
    /// A scalar or enum value.
    Leaf(Value),
    /// An object: response keys and values, in order.
    Object(Vec<(String, Out)>),
    /// A list.
    List(Vec<Out>),
}

impl serde::Serialize for Out {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Out::Null => s.serialize_unit(),
            Out::Leaf(v) => v.serialize(s),
            Out::Object(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Out::List(items) => {
                let mut l = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    l.serialize_element(v)?;
                }
                l.end()
            }
        }
    }
}

/// What a field resolves to, before its sub-selection is applied.
pub enum Resolved<'w> {
    /// A scalar or enum (null included).
    Leaf(Value),
    /// An object to select from.
    Object(Obj<'w>),
    /// A list of objects.
    List(Vec<Obj<'w>>),
    /// `null`.
    Null,
}

/// The data a query runs over.
pub struct World<'w> {
    /// The server's repositories.
    pub repos: &'w [Repo],
    /// Per repository (by index): PR number -> touch.
    pub touches: &'w [HashMap<u64, Touch>],
    /// The server's configuration (renames, repository errors, file weight).
    pub config: &'w FakeConfig,
    /// The request's token (repositories hidden from it are not found).
    pub token: Option<&'w str>,
    /// Login of the token's account (`viewer`).
    pub viewer: &'w str,
    /// Numeric id of the token's account.
    pub viewer_id: u64,
}

impl World<'_> {
    /// The touch of PR `n` of `repo`.
    pub fn touch(&self, repo: &Repo, n: u64) -> Touch {
        self.touches
            .get(repo.index)
            .and_then(|t| t.get(&n))
            .copied()
            .unwrap_or_default()
    }
}

/// The `rateLimit` object of an answer: the GraphQL bucket after this query's charge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateInfo {
    /// Points per window.
    pub limit: u32,
    /// Points this query costs.
    pub cost: u32,
    /// Points left.
    pub remaining: u32,
    /// Points used in the window.
    pub used: u32,
    /// End of the window, `YYYY-MM-DDTHH:MM:SSZ` (rounded up to the second).
    pub reset_at: String,
    /// Most nodes the query may return.
    pub node_count: u64,
}

/// The result of running a query.
pub struct Executed {
    /// `data` (None when a null spread to the root).
    pub data: Option<Out>,
    /// Field errors.
    pub errors: Vec<Value>,
    /// Weight of the answer: items returned, a changed file counting `graphql_file_weight`.
    pub weight: u64,
    /// `graphql_items_served` keys of the connection pages served.
    pub pages: Vec<String>,
}

/// A running query.
pub struct Exec<'q, 'w> {
    /// The query.
    pub q: &'q Query,
    /// The data.
    pub world: &'w World<'w>,
    /// The `rateLimit` values.
    pub rate: &'q RateInfo,
    /// Field errors so far.
    pub errors: Vec<Value>,
    /// Weight so far.
    pub weight: u64,
    /// Pages served so far.
    pub pages: Vec<String>,
    /// Dry run: only `rateLimit` is resolved at the root.
    dry_run: bool,
}

/// Runs a planned query over `world`.
pub fn run(plan: &Plan, world: &World<'_>, rate: &RateInfo) -> Executed {
    let mut exec = Exec {
        q: &plan.query,
        world,
        rate,
        errors: Vec::new(),
        weight: 0,
        pages: Vec::new(),
        dry_run: plan.dry_run,
    };
    let root = &plan.query.operation.selection_set;
    let data = exec.object(&Obj::Query, &[root], &mut Vec::new());
    Executed {
        data,
        errors: exec.errors,
        weight: exec.weight,
        pages: exec.pages,
    }
}

/// A field error with GitHub's `type`.
pub fn field_error(kind: &str, message: String, path: &[Value], at: Value) -> Value {
    json!({"type": kind, "path": path, "locations": at, "message": message})
}

impl<'q, 'w> Exec<'q, 'w> {
    /// Selects `sets` from `obj`; None when a non-null field came out null (the null then
    /// spreads to the parent).
    fn object(
        &mut self,
        obj: &Obj<'w>,
        sets: &[&'q [Selection]],
        path: &mut Vec<Value>,
    ) -> Option<Out> {
        let ty = obj.typename();
        let mut fields = Vec::new();
        for (key, group) in self.q.collect(sets, ty) {
            let f = group[0];
            let name = f.name.as_str();
            if name == "__typename" {
                fields.push((key, Out::Leaf(Value::String(ty.to_string()))));
                continue;
            }
            if self.dry_run && matches!(obj, Obj::Query) && name != "rateLimit" {
                continue;
            }
            // Validated against the static type; a field of an interface exists on each
            // of its members.
            let Some(def) = schema::field(ty, name) else {
                fields.push((key, Out::Null));
                continue;
            };
            path.push(Value::String(key.clone()));
            let value = match self.resolve(obj, f, path) {
                Ok(resolved) => self.complete(resolved, &group, path),
                Err(error) => {
                    self.errors.push(error);
                    Out::Null
                }
            };
            path.pop();
            if value == Out::Null && def.non_null() {
                return None;
            }
            fields.push((key, value));
        }
        Some(Out::Object(fields))
    }

    fn complete(
        &mut self,
        resolved: Resolved<'w>,
        group: &[&'q Node<ast::Field>],
        path: &mut Vec<Value>,
    ) -> Out {
        let sets: Vec<&'q [Selection]> = group.iter().map(|f| &f.selection_set[..]).collect();
        match resolved {
            Resolved::Null | Resolved::Leaf(Value::Null) => Out::Null,
            Resolved::Leaf(v) => Out::Leaf(v),
            Resolved::Object(o) => self.object(&o, &sets, path).unwrap_or(Out::Null),
            Resolved::List(items) => Out::List(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        path.push(Value::from(i));
                        let v = self.object(o, &sets, path).unwrap_or(Out::Null);
                        path.pop();
                        v
                    })
                    .collect(),
            ),
        }
    }
}
