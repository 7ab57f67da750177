//! A query document as the fake runs it: parsed with apollo-compiler's AST parser, the
//! operation picked, variables coerced, argument values resolved, fields collected.

use std::collections::{HashMap, HashSet};

use apollo_compiler::ast::{self, Definition, OperationType, Selection};
use apollo_compiler::Node;
use serde_json::{json, Map, Value};

use super::schema;

/// A parsed query, ready to analyse and run.
pub struct Query {
    /// The parsed document (kept for its source map: error locations).
    doc: ast::Document,
    /// The operation to run.
    pub operation: Node<ast::OperationDefinition>,
    /// Fragment definitions by name.
    pub fragments: HashMap<String, Node<ast::FragmentDefinition>>,
    /// Variable values: those sent, else the declared defaults.
    pub variables: Map<String, Value>,
}

/// One response key of a selection set and the fields that share it (merged).
pub type Grouped<'q> = Vec<(String, Vec<&'q Node<ast::Field>>)>;

/// An error entry with only a message.
pub fn message_error(message: &str) -> Value {
    json!({ "message": message })
}

impl Query {
    /// Parses `text` and picks the operation (by `operation_name` if several). Errors come
    /// as GraphQL error entries, ready to send.
    pub fn parse(
        text: &str,
        variables: &Map<String, Value>,
        operation_name: Option<&str>,
    ) -> Result<Query, Vec<Value>> {
        let doc =
            match ast::Document::parse(text, "query.graphql") {
                Ok(doc) => doc,
                Err(e) => return Err(e
                    .errors
                    .iter()
                    .map(|d| {
                        let at = d.line_column_range().map(|r| r.start);
                        json!({
                            "message": format!("Parse error: {}", d.error),
                            "locations": at.map(|p| json!([{"line": p.line, "column": p.column}]))
                                .unwrap_or_else(|| json!([])),
                        })
                    })
                    .collect()),
            };
        let mut operations = Vec::new();
        let mut fragments = HashMap::new();
        for def in &doc.definitions {
            match def {
                Definition::OperationDefinition(op) => operations.push(op.clone()),
                Definition::FragmentDefinition(f) => {
                    fragments.insert(f.name.to_string(), f.clone());
                }
                _ => {}
            }
        }
        let operation = match operation_name.filter(|n| !n.is_empty()) {
            Some(name) => operations
                .iter()
                .find(|op| op.name.as_ref().is_some_and(|n| n.as_str() == name))
                .cloned()
                .ok_or_else(|| vec![message_error(&format!("No operation named \"{name}\""))])?,
            None => match operations.as_slice() {
                [one] => one.clone(),
                [] => return Err(vec![message_error("No operations in query document")]),
                _ => return Err(vec![message_error("An operation name is required")]),
            },
        };
        if operation.operation_type == OperationType::Subscription {
            return Err(vec![message_error(
                "Schema is not configured for subscriptions",
            )]);
        }
        let mut query = Query {
            doc,
            operation,
            fragments,
            variables: Map::new(),
        };
        query.variables = query.coerce_variables(variables)?;
        Ok(query)
    }

    /// The root type of the operation (`Query` or `Mutation`).
    pub fn root_type(&self) -> &'static str {
        match self.operation.operation_type {
            OperationType::Mutation => "Mutation",
            _ => "Query",
        }
    }

    fn coerce_variables(
        &self,
        sent: &Map<String, Value>,
    ) -> Result<Map<String, Value>, Vec<Value>> {
        let mut out = Map::new();
        let mut errors = Vec::new();
        for def in &self.operation.variables {
            let name = def.name.as_str();
            let value = match (sent.get(name), &def.default_value) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => Some(literal(d)),
                (None, None) => None,
            };
            let checked = value.clone().unwrap_or(Value::Null);
            if let Some(problem) = type_problem(&def.ty, &checked) {
                errors.push(json!({
                    "extensions": {
                        "value": checked,
                        "problems": [{"path": [], "explanation": problem}],
                    },
                    "locations": self.location(def),
                    "message": format!(
                        "Variable ${name} of type {} was provided invalid value",
                        def.ty
                    ),
                }));
            } else if let Some(v) = value {
                out.insert(name.to_string(), v);
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Whether the operation declares variable `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.operation
            .variables
            .iter()
            .any(|v| v.name.as_str() == name)
    }

    /// `[{"line", "column"}]` of a node (empty when unknown).
    pub fn location<T>(&self, node: &Node<T>) -> Value {
        match node.line_column_range(&self.doc.sources) {
            Some(r) => json!([{"line": r.start.line, "column": r.start.column}]),
            None => json!([]),
        }
    }

    /// The value of argument `name` of a field: None when absent (or a variable that was
    /// not sent and has no default), else the value with variables substituted.
    pub fn arg(&self, field: &ast::Field, name: &str) -> Option<Value> {
        let arg = field.arguments.iter().find(|a| a.name.as_str() == name)?;
        if let ast::Value::Variable(v) = &*arg.value {
            return self.variables.get(v.as_str()).cloned();
        }
        Some(self.value(&arg.value))
    }

    /// An AST value as JSON, variables substituted (enums become strings).
    pub fn value(&self, v: &ast::Value) -> Value {
        match v {
            ast::Value::Variable(name) => self
                .variables
                .get(name.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            ast::Value::List(items) => Value::Array(items.iter().map(|i| self.value(i)).collect()),
            ast::Value::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.value(v)))
                    .collect(),
            ),
            other => literal(other),
        }
    }

    /// Whether `@skip`/`@include` keep a selection.
    pub fn included(&self, directives: &ast::DirectiveList) -> bool {
        let flag = |name: &str| {
            directives.get(name).map(|d| {
                d.arguments
                    .iter()
                    .find(|a| a.name.as_str() == "if")
                    .is_some_and(|a| self.value(&a.value) == Value::Bool(true))
            })
        };
        flag("skip") != Some(true) && flag("include") != Some(false)
    }

    /// Collects the fields of `sets` that apply to an object of type `concrete`, grouped by
    /// response key in document order (GraphQL's CollectFields).
    pub fn collect<'q>(&'q self, sets: &[&'q [Selection]], concrete: &str) -> Grouped<'q> {
        let mut out: Grouped<'q> = Vec::new();
        let mut visited = HashSet::new();
        for set in sets {
            self.collect_into(set, concrete, &mut out, &mut visited);
        }
        out
    }

    fn collect_into<'q>(
        &'q self,
        set: &'q [Selection],
        concrete: &str,
        out: &mut Grouped<'q>,
        visited: &mut HashSet<&'q str>,
    ) {
        for sel in set {
            match sel {
                Selection::Field(f) => {
                    if !self.included(&f.directives) {
                        continue;
                    }
                    let key = f.alias.as_ref().unwrap_or(&f.name).to_string();
                    match out.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, fields)) => fields.push(f),
                        None => out.push((key, vec![f])),
                    }
                }
                Selection::InlineFragment(frag) => {
                    let applies = frag
                        .type_condition
                        .as_ref()
                        .is_none_or(|t| schema::applies(t, concrete));
                    if applies && self.included(&frag.directives) {
                        self.collect_into(&frag.selection_set, concrete, out, visited);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.fragment_name.as_str();
                    let Some(frag) = self.fragments.get(name) else {
                        continue;
                    };
                    if !self.included(&spread.directives)
                        || !schema::applies(&frag.type_condition, concrete)
                        || !visited.insert(name)
                    {
                        continue;
                    }
                    self.collect_into(&frag.selection_set, concrete, out, visited);
                }
            }
        }
    }
}

/// A literal AST value as JSON (variables become null).
fn literal(v: &ast::Value) -> Value {
    match v {
        ast::Value::Null | ast::Value::Variable(_) => Value::Null,
        ast::Value::Enum(name) => Value::String(name.to_string()),
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Int(i) => i
            .as_str()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(i.as_str().to_string())),
        ast::Value::Float(x) => x
            .as_str()
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
        ast::Value::List(items) => Value::Array(items.iter().map(|i| literal(i)).collect()),
        ast::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), literal(v)))
                .collect(),
        ),
    }
}

/// Why `v` is not a value of type `ty`, if it is not (scalars are checked; enums and input
/// objects are checked where they are used).
fn type_problem(ty: &ast::Type, v: &Value) -> Option<String> {
    let (inner, non_null) = match ty {
        ast::Type::NonNullNamed(_) | ast::Type::NonNullList(_) => (ty, true),
        _ => (ty, false),
    };
    if v.is_null() {
        return non_null.then(|| "Expected value to not be null".to_string());
    }
    match inner {
        ast::Type::List(item) | ast::Type::NonNullList(item) => match v {
            Value::Array(items) => items.iter().find_map(|i| type_problem(item, i)),
            single => type_problem(item, single),
        },
        ast::Type::Named(name) | ast::Type::NonNullNamed(name) => {
            let ok = match name.as_str() {
                "Int" => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                "Boolean" => v.is_boolean(),
                "String" | "URI" | "DateTime" | "GitObjectID" | "GitTimestamp" => v.is_string(),
                "ID" => v.is_string() || v.is_i64(),
                _ => true,
            };
            (!ok).then(|| format!("Could not coerce value {v} to {name}"))
        }
    }
}
