//! Exact decimal arithmetic for CEL rules, over money.
//!
//! CEL has `int` and `double` and nothing decimal, and a JSON number reaches it
//! as a double: `150 * 0.000002` in doubles is `0.00030000000000000003`, not
//! the `0.0003` the producer wrote. These functions read each number back as
//! the shortest decimal that round-trips (exactly the literal a producer wrote,
//! for any literal of up to 15 significant digits) and compute in
//! `rust_decimal`. Results are canonical decimal strings, so `==` on two of
//! them is decimal equality:
//!
//! - `decimal(x)`: `x` (int, uint, double or decimal string) as a canonical decimal;
//! - `decimal_mul(a, b)`, `decimal_add(a, b)`, `decimal_sub(a, b)`;
//! - `decimal_cmp(a, b)`: -1, 0 or 1.

use std::str::FromStr;
use std::sync::Arc;

use cel::common::types::DYN_TYPE;
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, Value};
use rust_decimal::Decimal;

/// Registers the decimal functions on `env`.
pub(crate) fn register(env: &mut Env) -> Result<(), cel::DeclarationError> {
    let one = || vec![DYN_TYPE];
    let two = || vec![DYN_TYPE, DYN_TYPE];
    env.add_overload("decimal", "decimal_dyn", one(), decimal)?;
    env.add_overload("decimal_mul", "decimal_mul_dyn", two(), mul)?;
    env.add_overload("decimal_add", "decimal_add_dyn", two(), add)?;
    env.add_overload("decimal_sub", "decimal_sub_dyn", two(), sub)?;
    env.add_overload("decimal_cmp", "decimal_cmp_dyn", two(), cmp)?;
    Ok(())
}

/// A CEL value as an exact decimal; `what` names the function for the error.
/// The error never quotes the value: it may be a tagged one.
pub fn parse(value: &Value, what: &str) -> Result<Decimal, ExecutionError> {
    let text = match value {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        // Rust prints the shortest decimal that reads back as the same double.
        Value::Float(f) if f.is_finite() => format!("{f}"),
        Value::String(s) => s.to_string(),
        _ => {
            return Err(ExecutionError::function_error(
                what,
                "expects a number or a decimal string",
            ))
        }
    };
    Decimal::from_str(&text).map_err(|_| {
        ExecutionError::function_error(what, "a number out of the decimal range (28 digits)")
    })
}

fn canonical(d: Decimal) -> String {
    d.normalize().to_string()
}

fn arg(args: &[CowVal<'_, '_>], i: usize, what: &str) -> Result<Decimal, ExecutionError> {
    let v = args
        .get(i)
        .ok_or_else(|| ExecutionError::invalid_argument_count(i + 1, args.len()))?;
    let value = Value::try_from(v.as_ref() as &dyn Val)?;
    parse(&value, what)
}

fn out<'b, 'v>(value: Value) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let boxed: Box<dyn Val> = value.try_into()?;
    Ok(CowVal::Owned(boxed))
}

fn string<'b, 'v>(d: Decimal) -> Result<CowVal<'b, 'v>, ExecutionError> {
    out(Value::String(Arc::new(canonical(d))))
}

fn decimal<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    string(arg(&args, 0, "decimal")?)
}

fn mul<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (arg(&args, 0, "decimal_mul")?, arg(&args, 1, "decimal_mul")?);
    a.checked_mul(b)
        .ok_or_else(|| ExecutionError::function_error("decimal_mul", "overflow"))
        .and_then(string)
}

fn add<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (arg(&args, 0, "decimal_add")?, arg(&args, 1, "decimal_add")?);
    a.checked_add(b)
        .ok_or_else(|| ExecutionError::function_error("decimal_add", "overflow"))
        .and_then(string)
}

fn sub<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (arg(&args, 0, "decimal_sub")?, arg(&args, 1, "decimal_sub")?);
    a.checked_sub(b)
        .ok_or_else(|| ExecutionError::function_error("decimal_sub", "overflow"))
        .and_then(string)
}

fn cmp<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (arg(&args, 0, "decimal_cmp")?, arg(&args, 1, "decimal_cmp")?);
    out(Value::Int(a.cmp(&b) as i64))
}
