//! Schema identity: names, semantic versions and the `$id` scheme that ties
//! a schema file's path to its identifier.
//!
//! Every schema lives at `schemas/<Name>/<MAJOR.MINOR.PATCH>.json` and its
//! `$id` is the catalog's `schema_base` followed by that same relative path,
//! so an `$id` found in an event header leads straight to a file.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A semantic version, `MAJOR.MINOR.PATCH`, as schema files are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version {
    /// Breaking changes bump this.
    pub major: u64,
    /// Additive changes bump this.
    pub minor: u64,
    /// Annotation-only changes bump this.
    pub patch: u64,
}

impl Version {
    /// Builds a version from its three parts.
    pub const fn new(major: u64, minor: u64, patch: u64) -> Self {
        Version {
            major,
            minor,
            patch,
        }
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch).cmp(&(other.major, other.minor, other.patch))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split('.');
        let mut next = || -> Result<u64, String> {
            let part = parts
                .next()
                .ok_or_else(|| format!("`{s}` is not MAJOR.MINOR.PATCH"))?;
            if part.is_empty()
                || !part.bytes().all(|b| b.is_ascii_digit())
                || (part.len() > 1 && part.starts_with('0'))
            {
                return Err(format!("`{s}` is not MAJOR.MINOR.PATCH"));
            }
            part.parse()
                .map_err(|_| format!("`{s}`: version part out of range"))
        };
        let v = Version::new(next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(format!("`{s}` is not MAJOR.MINOR.PATCH"));
        }
        Ok(v)
    }
}

impl TryFrom<String> for Version {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Version> for String {
    fn from(v: Version) -> String {
        v.to_string()
    }
}

/// A schema's name and version: what `Name@1.2.0` on the command line means.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SchemaRef {
    /// The schema's name, e.g. `UsageEvent`.
    pub name: String,
    /// Its version; `None` means the latest.
    pub version: Option<Version>,
}

impl FromStr for SchemaRef {
    type Err = String;

    /// Parses `Name`, `Name@1.2.0`, or `Name@1` (latest of major 1 is not
    /// expressible here; a bare major is refused to keep references exact).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, version) = match s.split_once('@') {
            Some((name, v)) => (name, Some(v.parse::<Version>()?)),
            None => (s, None),
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(format!("`{s}` is not a schema name (Name or Name@1.2.3)"));
        }
        Ok(SchemaRef {
            name: name.to_string(),
            version,
        })
    }
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// One schema file: its identity and its parsed document.
#[derive(Debug, Clone)]
pub struct SchemaDoc {
    /// The schema's name, from its directory.
    pub name: String,
    /// Its version, from its file name.
    pub version: Version,
    /// Its `$id`.
    pub id: String,
    /// Path relative to the contracts directory, e.g. `schemas/UsageEvent/1.0.0.json`.
    pub path: String,
    /// The raw file contents, kept for hashing (the lock file) exactly as written.
    pub source: String,
    /// The parsed JSON Schema.
    pub document: Value,
}

impl SchemaDoc {
    /// `Name@version`, the form the CLI prints.
    pub fn label(&self) -> String {
        format!("{}@{}", self.name, self.version)
    }
}

/// Splits a schema `$id` into name and version, given the catalog's base.
pub fn parse_id(base: &str, id: &str) -> Option<(String, Version)> {
    let rest = id.strip_prefix(base)?;
    let (name, file) = rest.split_once('/')?;
    let version = file.strip_suffix(".json")?.parse().ok()?;
    Some((name.to_string(), version))
}

/// The `$id` a schema of this name and version must carry.
pub fn make_id(base: &str, name: &str, version: Version) -> String {
    format!("{base}{name}/{version}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_numerically_not_lexically() {
        let mut v: Vec<Version> = ["1.10.0", "1.2.0", "1.2.10", "1.2.9", "0.9.0"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        v.sort();
        let s: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(s, ["0.9.0", "1.2.0", "1.2.9", "1.2.10", "1.10.0"]);
    }

    #[test]
    fn malformed_versions_are_refused() {
        for bad in [
            "1.0", "1.0.0.0", "v1.0.0", "1..0", "1.0.-1", "", "1.0.x", "01.0.0",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn ids_round_trip() {
        let base = "https://c.internal/schemas/";
        let id = make_id(base, "UsageEvent", Version::new(1, 2, 3));
        assert_eq!(id, "https://c.internal/schemas/UsageEvent/1.2.3.json");
        assert_eq!(
            parse_id(base, &id),
            Some(("UsageEvent".to_string(), Version::new(1, 2, 3)))
        );
        assert_eq!(parse_id(base, "https://other/UsageEvent/1.2.3.json"), None);
    }

    #[test]
    fn schema_refs_parse() {
        let r: SchemaRef = "UsageEvent@1.1.0".parse().unwrap();
        assert_eq!(r.name, "UsageEvent");
        assert_eq!(r.version, Some(Version::new(1, 1, 0)));
        assert_eq!("UsageEvent".parse::<SchemaRef>().unwrap().version, None);
        assert!("Usage Event".parse::<SchemaRef>().is_err());
        assert!("UsageEvent@1".parse::<SchemaRef>().is_err());
    }
}
