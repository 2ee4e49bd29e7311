use super::*;
use serde_json::json;

const MONEY: &str = "!has(cost.rate) || decimal(cost.amount) == decimal_mul(quantity, cost.rate)";

fn spec(name: &str, expr: &str) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        schema: "UsageEvent".into(),
        major: 1,
        expr: expr.into(),
        message: "cost.amount must equal quantity × cost.rate".into(),
        on_failure: OnFailure::Refuse,
    }
}

fn rules(specs: Vec<RuleSpec>) -> Rules {
    let (r, problems) = Rules::compile(specs);
    assert_eq!(problems, Vec::<String>::new());
    r
}

fn usage(quantity: Value, amount: Value, rate: Value) -> Value {
    json!({"quantity": quantity, "cost": {"amount": amount, "currency": "USD", "rate": rate}})
}

#[test]
fn the_money_rule_is_exact_in_decimal() {
    let r = rules(vec![spec("cost_matches_rate", MONEY)]);
    let now = chrono::Utc::now();
    // In doubles 3 × 0.1 is 0.30000000000000004: a float comparison would refuse it.
    assert_ne!(3.0 * 0.1, 0.3);
    let ok = usage(json!(150), json!(0.0003), json!(0.000002));
    assert_eq!(r.evaluate("UsageEvent", 1, &ok, now), vec![]);
    assert_eq!(
        r.evaluate(
            "UsageEvent",
            1,
            &usage(json!(3), json!(0.3), json!(0.1)),
            now
        ),
        vec![]
    );
    let bad = usage(json!(150), json!(0.0004), json!(0.000002));
    let failures = r.evaluate("UsageEvent", 1, &bad, now);
    assert_eq!(
        failures,
        vec![RuleFailure {
            rule: "cost_matches_rate".into(),
            message: "cost.amount must equal quantity × cost.rate".into(),
            fields: vec![
                "/cost/amount".into(),
                "/cost/rate".into(),
                "/quantity".into()
            ],
            detail: None,
            on_failure: OnFailure::Refuse,
        }]
    );
    assert_eq!(
        failures[0].to_string(),
        "rule `cost_matches_rate` failed: cost.amount must equal quantity × cost.rate [reads /cost/amount, /cost/rate, /quantity]"
    );
}

#[test]
fn a_rule_runs_only_on_its_schema_major() {
    let r = rules(vec![spec("cost_matches_rate", MONEY)]);
    let bad = usage(json!(150), json!(0.0004), json!(0.000002));
    let now = chrono::Utc::now();
    assert!(r.evaluate("UsageEvent", 2, &bad, now).is_empty());
    assert!(r.evaluate("RealtimeMessage", 1, &bad, now).is_empty());
}

#[test]
fn an_evaluation_error_fails_the_rule_without_quoting_values() {
    let r = rules(vec![spec("needs_region", "region.startsWith('eu')")]);
    let f = r.evaluate(
        "UsageEvent",
        1,
        &json!({"secret": "hunter2"}),
        chrono::Utc::now(),
    );
    assert_eq!(f.len(), 1);
    assert_eq!(
        f[0].detail.as_deref(),
        Some("cannot evaluate: the event has no field `region`")
    );
    let r = rules(vec![spec("typed", "quantity + 'x' == 'y'")]);
    let f = r.evaluate(
        "UsageEvent",
        1,
        &json!({"quantity": 987654}),
        chrono::Utc::now(),
    );
    assert!(
        f[0].detail.as_deref().unwrap().starts_with("type error"),
        "{f:?}"
    );
    assert!(!f[0].to_string().contains("987654"), "{}", f[0]);
}

#[test]
fn a_non_bool_result_fails() {
    let r = rules(vec![spec("not_bool", "quantity")]);
    let f = r.evaluate("UsageEvent", 1, &json!({"quantity": 1}), chrono::Utc::now());
    assert_eq!(f[0].detail.as_deref(), Some("the expression is not a bool"));
}

#[test]
fn now_bounds_the_timestamp() {
    let r = rules(vec![spec(
        "not_in_future",
        "timestamp(timestamp) <= now + duration('5m')",
    )]);
    let now = chrono::DateTime::parse_from_rfc3339("2024-01-15T10:30:00Z")
        .unwrap()
        .to_utc();
    let at = |t: &str| r.evaluate("UsageEvent", 1, &json!({"timestamp": t}), now);
    assert!(at("2024-01-15T10:34:59Z").is_empty());
    assert_eq!(at("2024-01-15T10:35:01Z").len(), 1);
}

#[test]
fn bad_rules_are_problems() {
    let (r, problems) = Rules::compile(vec![
        spec("a", "quantity >"),
        spec("b", "true"),
        spec("b", "true"),
    ]);
    assert_eq!(r.all().len(), 1);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("rule `a` of UsageEvent@1 does not compile"),
        "{problems:?}"
    );
    assert_eq!(problems[1], "rule `b` is declared twice for UsageEvent@1");
}

#[test]
fn fields_read_skip_comprehension_variables() {
    let env = environment();
    let p = env
        .compile("recipients.all(r, r.user_id != sender.user_id) && has(cost.rate)")
        .unwrap();
    assert_eq!(
        fields_read(p.expression()),
        vec!["/cost/rate", "/recipients", "/sender/user_id"]
    );
}

#[test]
fn decimal_functions_compute_exactly() {
    let env = Arc::new(environment());
    let eval = |src: &str| {
        let ctx = Context::with_env(env.clone());
        env.compile(src).unwrap().execute(&ctx)
    };
    let s = |v: &str| Ok(CelValue::String(Arc::new(v.to_owned())));
    assert_eq!(eval("decimal_add(0.1, 0.2)"), s("0.3"));
    assert_eq!(eval("decimal_sub(1, 0.9)"), s("0.1"));
    assert_eq!(eval("decimal_mul(3, 0.1)"), s("0.3"));
    assert_eq!(eval("decimal('1.50')"), s("1.5"));
    assert_eq!(eval("decimal(2u)"), s("2"));
    assert_eq!(
        eval("decimal_cmp(0.3, decimal_add(0.1, 0.2))"),
        Ok(CelValue::Int(0))
    );
    assert_eq!(eval("decimal_cmp(0.31, 0.3)"), Ok(CelValue::Int(1)));
    assert_eq!(eval("decimal_cmp(0.29, 0.3)"), Ok(CelValue::Int(-1)));
    assert!(eval("decimal('abc')").is_err());
    assert!(eval("decimal(true)").is_err());
    assert!(eval("decimal_mul('79228162514264337593543950335', 10)").is_err());
}
