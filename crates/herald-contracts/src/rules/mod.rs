//! Domain rules: what JSON Schema cannot say, as CEL expressions.
//!
//! The catalog declares each rule for one schema major (`[[rule]]` in
//! `catalog.toml`): a name, a CEL expression that must be `true`, a message and
//! what to do on failure (`refuse`, or `warn` to count and let through). Every
//! top-level field of the event is a CEL variable (`cost.amount`, `quantity`),
//! and `now` is the current time. Money is compared with the exact decimal
//! functions of [`decimal`], never as doubles.
//!
//! Rules compile once, when the catalog loads, and run after the schema has
//! passed: at publish (refused), at consume (dead-lettered as `rule_failed`)
//! and in `herald check` (against every example). A failure names the rule, its
//! message and the JSON Pointers of the fields the rule reads, never a value:
//! the fields may be tagged.

pub mod decimal;

use std::collections::BTreeSet;
use std::sync::Arc;

use cel::common::ast::Expr;
use cel::{Context, Env, IdedExpr, Program, Value as CelValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What happens to an event that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refused at publish, dead-lettered at consume.
    #[default]
    Refuse,
    /// Let through; counted and logged by rule name.
    Warn,
}

/// A rule as `catalog.toml` declares it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Stable name, in failures and metrics: `cost_matches_rate`.
    pub name: String,
    /// Schema name the rule applies to.
    pub schema: String,
    /// The major it applies to (every version of it).
    pub major: u64,
    /// The CEL expression; the event passes when it is `true`.
    pub expr: String,
    /// What the rule means, for the failure message.
    pub message: String,
    /// What to do on failure.
    #[serde(default)]
    pub on_failure: OnFailure,
}

/// One rule an event broke.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleFailure {
    /// The rule's name.
    pub rule: String,
    /// The rule's message.
    pub message: String,
    /// JSON Pointers of the fields the rule reads.
    pub fields: Vec<String>,
    /// Why evaluation failed, when it did not simply return `false` (no values quoted).
    pub detail: Option<String>,
    /// What the catalog says to do.
    pub on_failure: OnFailure,
}

impl std::fmt::Display for RuleFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "rule `{}` failed: {}", self.rule, self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " ({d})")?;
        }
        if !self.fields.is_empty() {
            write!(f, " [reads {}]", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    /// As declared.
    pub spec: RuleSpec,
    /// JSON Pointers of the event fields the expression reads.
    pub fields: Vec<String>,
    program: Program,
}

/// Every rule of a catalog, compiled once.
pub struct Rules {
    env: Arc<Env>,
    rules: Vec<Rule>,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").field("rules", &self.rules).finish()
    }
}

/// The CEL environment rules run in: the standard library plus [`decimal`].
pub fn environment() -> Env {
    let mut env = Env::stdlib();
    decimal::register(&mut env).expect("the decimal functions are declared once");
    env
}

impl Rules {
    /// Compiles every rule; a rule that does not parse is a problem for
    /// `herald check`, one line each.
    pub fn compile(specs: Vec<RuleSpec>) -> (Rules, Vec<String>) {
        let env = Arc::new(environment());
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for spec in specs {
            if !names.insert((spec.schema.clone(), spec.major, spec.name.clone())) {
                problems.push(format!(
                    "rule `{}` is declared twice for {}@{}",
                    spec.name, spec.schema, spec.major
                ));
                continue;
            }
            match env.compile(&spec.expr) {
                Ok(program) => {
                    let fields = fields_read(program.expression());
                    rules.push(Rule {
                        spec,
                        fields,
                        program,
                    });
                }
                Err(e) => problems.push(format!(
                    "rule `{}` of {}@{} does not compile: {}",
                    spec.name,
                    spec.schema,
                    spec.major,
                    e.to_string().replace('\n', " ")
                )),
            }
        }
        (Rules { env, rules }, problems)
    }

    /// Every compiled rule.
    pub fn all(&self) -> &[Rule] {
        &self.rules
    }

    /// The rules of one schema major.
    pub fn of<'a>(&'a self, schema: &'a str, major: u64) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.spec.schema == schema && r.spec.major == major)
    }

    /// Runs the rules of `schema`@`major` on `event` at time `now`; every failure.
    pub fn evaluate(
        &self,
        schema: &str,
        major: u64,
        event: &Value,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<RuleFailure> {
        let mut rules = self.of(schema, major).peekable();
        if rules.peek().is_none() {
            return Vec::new();
        }
        let mut ctx = Context::with_env(self.env.clone());
        if let Some(map) = event.as_object() {
            for (k, v) in map {
                if let Ok(value) = cel::to_value(v) {
                    ctx.add_variable_from_value(k.as_str(), value);
                }
            }
        }
        ctx.add_variable_from_value("now", CelValue::Timestamp(now.fixed_offset()));
        rules
            .filter_map(|rule| {
                let detail = match rule.program.execute(&ctx) {
                    Ok(CelValue::Bool(true)) => return None,
                    Ok(CelValue::Bool(false)) => None,
                    Ok(_) => Some("the expression is not a bool".to_owned()),
                    Err(e) => Some(masked(&e)),
                };
                Some(RuleFailure {
                    rule: rule.spec.name.clone(),
                    message: rule.spec.message.clone(),
                    fields: rule.fields.clone(),
                    detail,
                    on_failure: rule.spec.on_failure,
                })
            })
            .collect()
    }
}

/// An evaluation error without the values some variants quote.
fn masked(e: &cel::ExecutionError) -> String {
    use cel::ExecutionError as E;
    match e {
        E::NoSuchKey(k) => format!("cannot evaluate: the event has no field `{k}`"),
        E::UndeclaredReference(k) => format!("cannot evaluate: the event has no field `{k}`"),
        E::NoSuchOverload(o) => format!("type error: {o}"),
        E::FunctionError { function, message } => format!("{function}: {message}"),
        E::UnsupportedBinaryOperator(op, _, _) => {
            format!("type error: operator `{op}` does not apply to these types")
        }
        E::ValuesNotComparable(_, _) => "type error: values that cannot be compared".to_owned(),
        E::InvalidArgumentCount { .. } | E::MissingArgumentOrTarget => e.to_string(),
        _ => "cannot evaluate: an operator does not apply to these values".to_owned(),
    }
}

/// The JSON Pointers a rule reads: each chain of field selections that starts
/// at an event variable (`cost.amount` is `/cost/amount`). Names bound by
/// comprehensions and `now` are not fields.
pub fn fields_read(expr: &IdedExpr) -> Vec<String> {
    let mut out = BTreeSet::new();
    let mut bound = vec!["now".to_owned()];
    collect(expr, &mut bound, &mut out);
    out.into_iter().collect()
}

fn chain(expr: &IdedExpr) -> Option<Vec<&str>> {
    match &expr.expr {
        Expr::Ident(name) => Some(vec![name.as_str()]),
        Expr::Select(s) => {
            let mut c = chain(&s.operand)?;
            c.push(s.field.as_str());
            Some(c)
        }
        _ => None,
    }
}

fn collect(expr: &IdedExpr, bound: &mut Vec<String>, out: &mut BTreeSet<String>) {
    if let Some(c) = chain(expr) {
        if !bound.iter().any(|b| b == c[0]) {
            let pointer: String = c
                .iter()
                .map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1")))
                .collect();
            out.insert(pointer);
        }
        return;
    }
    match &expr.expr {
        Expr::Select(s) => collect(&s.operand, bound, out),
        Expr::Call(call) => {
            if let Some(t) = &call.target {
                collect(t, bound, out);
            }
            call.args.iter().for_each(|a| collect(a, bound, out));
        }
        Expr::List(l) => l.elements.iter().for_each(|e| collect(e, bound, out)),
        Expr::Map(m) => m.entries.iter().for_each(|e| {
            if let cel::common::ast::EntryExpr::MapEntry(me) = &e.expr {
                collect(&me.key, bound, out);
                collect(&me.value, bound, out);
            }
        }),
        Expr::Comprehension(c) => {
            collect(&c.iter_range, bound, out);
            let n = bound.len();
            bound.push(c.iter_var.clone());
            bound.extend(c.iter_var2.clone());
            bound.push(c.accu_var.clone());
            collect(&c.accu_init, bound, out);
            collect(&c.loop_cond, bound, out);
            collect(&c.loop_step, bound, out);
            collect(&c.result, bound, out);
            bound.truncate(n);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;
