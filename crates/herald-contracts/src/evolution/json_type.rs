//! Sets of JSON instance types.
//!
//! `integer` is a subset of `number`, so the set is built from disjoint atoms
//! (integers and non-integral numbers are separate) and subset/intersection become
//! plain bit operations: `number` = integer ∪ fraction.

use serde_json::Value;

/// A set of JSON instance types, as disjoint atoms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TypeSet(pub(crate) u8);

pub(crate) const NULL: u8 = 1;
pub(crate) const BOOLEAN: u8 = 2;
pub(crate) const OBJECT: u8 = 4;
pub(crate) const ARRAY: u8 = 8;
pub(crate) const INTEGER: u8 = 16;
pub(crate) const FRACTION: u8 = 32;
pub(crate) const STRING: u8 = 64;
pub(crate) const NUMBER: u8 = INTEGER | FRACTION;
pub(crate) const ALL: u8 = 127;

impl TypeSet {
    /// Every type (no `type` keyword).
    pub(crate) const ANY: TypeSet = TypeSet(ALL);

    /// Parses one `type` name; unknown names accept nothing.
    pub(crate) fn from_name(name: &str) -> TypeSet {
        TypeSet(match name {
            "null" => NULL,
            "boolean" => BOOLEAN,
            "object" => OBJECT,
            "array" => ARRAY,
            "integer" => INTEGER,
            "number" => NUMBER,
            "string" => STRING,
            _ => 0,
        })
    }

    /// The `type` keyword's value (a name or an array of names) as a set.
    pub(crate) fn from_keyword(v: &Value) -> TypeSet {
        match v {
            Value::String(s) => TypeSet::from_name(s),
            Value::Array(a) => TypeSet(
                a.iter()
                    .filter_map(Value::as_str)
                    .fold(0, |acc, s| acc | TypeSet::from_name(s).0),
            ),
            _ => TypeSet::ANY,
        }
    }

    /// The type atom of an instance (`1.0` counts as an integer, as in draft 6+).
    pub(crate) fn of_value(v: &Value) -> TypeSet {
        TypeSet(match v {
            Value::Null => NULL,
            Value::Bool(_) => BOOLEAN,
            Value::Object(_) => OBJECT,
            Value::Array(_) => ARRAY,
            Value::String(_) => STRING,
            Value::Number(n) => {
                if n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                    INTEGER
                } else {
                    FRACTION
                }
            }
        })
    }

    pub(crate) fn and(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 & o.0)
    }
    pub(crate) fn or(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 | o.0)
    }
    pub(crate) fn minus(self, o: TypeSet) -> TypeSet {
        TypeSet(self.0 & !o.0)
    }
    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub(crate) fn subset_of(self, o: TypeSet) -> bool {
        self.0 & !o.0 == 0
    }
    pub(crate) fn has(self, atoms: u8) -> bool {
        self.0 & atoms != 0
    }

    /// Splits into the units a reader distinguishes (the numeric atoms stay together),
    /// used when comparing unions branch by branch.
    pub(crate) fn units(self) -> Vec<TypeSet> {
        [NULL, BOOLEAN, OBJECT, ARRAY, NUMBER, STRING]
            .iter()
            .map(|u| TypeSet(self.0 & u))
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Human names, e.g. `["integer", "string"]`.
    pub(crate) fn names(self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.has(NULL) {
            out.push("null");
        }
        if self.has(BOOLEAN) {
            out.push("boolean");
        }
        if self.has(OBJECT) {
            out.push("object");
        }
        if self.has(ARRAY) {
            out.push("array");
        }
        match self.0 & NUMBER {
            NUMBER => out.push("number"),
            INTEGER => out.push("integer"),
            FRACTION => out.push("non-integer number"),
            _ => {}
        }
        if self.has(STRING) {
            out.push("string");
        }
        out
    }

    /// `a|b` rendering for messages.
    pub(crate) fn describe(self) -> String {
        if self.0 == ALL {
            return "any".to_string();
        }
        if self.is_empty() {
            return "nothing".to_string();
        }
        self.names().join("|")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integer_is_a_number() {
        let int = TypeSet::from_name("integer");
        let num = TypeSet::from_name("number");
        assert!(int.subset_of(num));
        assert!(!num.subset_of(int));
        assert_eq!(TypeSet::of_value(&json!(1.0)), int);
        assert_eq!(
            TypeSet::from_keyword(&json!(["string", "null"])).describe(),
            "null|string"
        );
        assert_eq!(TypeSet::ANY.units().len(), 6);
    }
}
