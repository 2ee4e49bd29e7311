//! JSON Schema fragments said in words, for people who don't read JSON
//! Schema: a subject's constraint, a schema's `if`/`then`.

use serde_json::Value;

/// Keywords that say nothing about what is valid.
const ANNOTATIONS: &[&str] = &["$schema", "$id", "$comment", "title", "description"];

/// The rules a fragment imposes, one sentence each.
pub fn describe(fragment: &Value) -> Vec<String> {
    let Some(map) = fragment.as_object() else {
        return match fragment {
            Value::Bool(true) => vec!["anything is accepted".into()],
            Value::Bool(false) => vec!["nothing is accepted".into()],
            other => vec![format!("satisfies {other}")],
        };
    };
    let mut out = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "properties" => {
                for (name, sub) in value.as_object().into_iter().flatten() {
                    out.extend(describe_property(name, sub));
                }
            }
            "required" => {
                let names: Vec<String> = value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                out.push(match names.len() {
                    1 => format!("{} must be present", names[0]),
                    _ => format!("{} must all be present", names.join(", ")),
                });
            }
            "if" => {
                let cond = describe(value)
                    .iter()
                    .map(|rule| as_condition(rule))
                    .collect::<Vec<_>>()
                    .join(" and ");
                if let Some(then) = map.get("then") {
                    out.push(format!("when {cond}: {}", describe(then).join("; ")));
                }
                if let Some(otherwise) = map.get("else") {
                    out.push(format!(
                        "otherwise ({cond} does not hold): {}",
                        describe(otherwise).join("; ")
                    ));
                }
            }
            "then" | "else" => {}
            other => out.push(format!("{other} is {value}")),
        }
    }
    out
}

/// A rule restated as a condition: "x must be 1" becomes "x is 1".
fn as_condition(rule: &str) -> String {
    rule.replace(" must all be present", " are all present")
        .replace(" must be present", " is present")
        .replace(" must be one of ", " is one of ")
        .replace(" must be ", " is ")
}

fn describe_property(name: &str, sub: &Value) -> Vec<String> {
    let Some(map) = sub.as_object() else {
        return vec![format!("{name}: {}", describe(sub).join("; "))];
    };
    let mut out = Vec::new();
    for (key, value) in map {
        match key.as_str() {
            k if ANNOTATIONS.contains(&k) => {}
            "const" => out.push(format!("{name} must be {value}")),
            "enum" => out.push(format!(
                "{name} must be one of {}",
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            _ => {
                let mut one = serde_json::Map::new();
                one.insert(key.clone(), value.clone());
                for rule in describe(&Value::Object(one)) {
                    out.push(format!("{name}: {rule}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_subject_constraint_reads_as_sentences() {
        let c = json!({"properties": {"status": {"const": "failed"}}, "required": ["error"]});
        assert_eq!(
            describe(&c),
            vec![
                "status must be \"failed\"".to_string(),
                "error must be present".to_string()
            ]
        );
    }

    #[test]
    fn if_then_reads_as_a_condition() {
        let s = json!({
            "if": {"properties": {"status": {"const": "failed"}}, "required": ["status"]},
            "then": {"required": ["error"]}
        });
        assert_eq!(
            describe(&s),
            vec![
                "when status is \"failed\" and status is present: error must be present"
                    .to_string()
            ]
        );
    }
}
