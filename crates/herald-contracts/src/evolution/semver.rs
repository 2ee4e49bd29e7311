//! Semantic versions of schemas and the bump a change needs.
//!
//! Why: the spec asks for semantic versioning of schemas; the gate turns a
//! [`Report`] into "needs at least 2.0.0" so a producer cannot ship a
//! breaking change as a minor release. Larger-than-needed bumps are allowed.

use super::{Change, EvolutionError, Report, Severity};
use serde::Serialize;
use std::fmt;

/// Schema versions are the contracts' own [`crate::schema::Version`].
pub use crate::schema::Version;

fn parse(version: &str) -> Result<Version, EvolutionError> {
    version
        .trim()
        .parse()
        .map_err(|_| EvolutionError::InvalidVersion {
            version: version.to_string(),
        })
}

/// Size of a version increment, ordered `None < Patch < Minor < Major`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    /// Same version (identical schemas).
    None,
    /// Annotation-only changes.
    Patch,
    /// Compatible changes to what validates.
    Minor,
    /// Breaking changes.
    Major,
}

impl Bump {
    /// The smallest version after `v` that carries this bump.
    pub fn apply(self, v: Version) -> Version {
        match self {
            Bump::None => v,
            Bump::Patch => Version::new(v.major, v.minor, v.patch + 1),
            Bump::Minor => Version::new(v.major, v.minor + 1, 0),
            Bump::Major => Version::new(v.major + 1, 0, 0),
        }
    }

    /// The stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Bump::None => "none",
            Bump::Patch => "patch",
            Bump::Minor => "minor",
            Bump::Major => "major",
        }
    }
}

impl fmt::Display for Bump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The bump from `old` to `new`, or `None` if `new` is not greater.
pub fn declared_bump(old: Version, new: Version) -> Option<Bump> {
    if new.major > old.major {
        Some(Bump::Major)
    } else if new.major < old.major {
        None
    } else if new.minor > old.minor {
        Some(Bump::Minor)
    } else if new.minor < old.minor {
        None
    } else if new.patch > old.patch {
        Some(Bump::Patch)
    } else if new.patch == old.patch {
        Some(Bump::None)
    } else {
        None
    }
}

/// Outcome of checking a declared version against the changes.
#[derive(Debug, Clone, Serialize)]
pub struct BumpCheck {
    /// The earlier version.
    pub old: Version,
    /// The version being released.
    pub new: Version,
    /// What `new` declares relative to `old` (`None` when it is not greater).
    pub declared: Option<Bump>,
    /// What the changes need.
    pub needed: Bump,
    /// The smallest acceptable version.
    pub minimum: Version,
    /// Why the declared version is not acceptable (`None` when it is).
    pub violation: Option<String>,
}

impl BumpCheck {
    /// True when the declared version covers the changes.
    pub fn is_ok(&self) -> bool {
        self.violation.is_none()
    }
}

fn driving_change(report: &Report) -> Option<&Change> {
    let top = report.changes.iter().map(|c| c.severity).max()?;
    report
        .changes
        .iter()
        .find(|c| c.severity == top && top != Severity::Ignore)
}

/// Checks that `new_version` is a large enough step from `old_version` for the
/// changes in `report`; the violation message names the change that drives the
/// bump and the smallest version that would be accepted.
pub fn check_bump(
    old_version: &str,
    new_version: &str,
    report: &Report,
) -> Result<BumpCheck, EvolutionError> {
    let old = parse(old_version)?;
    let new = parse(new_version)?;
    let declared = declared_bump(old, new);
    let needed = report.needed_bump;
    let minimum = needed.apply(old);
    let violation = match declared {
        None => Some(format!("version {new} is not greater than {old}")),
        Some(d) if d < needed => {
            let why = match driving_change(report) {
                Some(c) => format!(
                    "{} at `{}` ({}) is {} under mode {}",
                    c.kind,
                    if c.pointer.is_empty() {
                        "/"
                    } else {
                        &c.pointer
                    },
                    c.message,
                    c.severity,
                    report.mode
                ),
                None => "the schema changed".to_string(),
            };
            Some(format!(
                "version {new} declares a {d} bump over {old}, but {why}: it needs a {needed} bump, i.e. at least {minimum}"
            ))
        }
        // Declared at least what is needed (equal versions only pass with no change).
        Some(_) => None,
    };
    Ok(BumpCheck {
        old,
        new,
        declared,
        needed,
        minimum,
        violation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bumps() {
        let v: Version = "1.2.3".parse().unwrap();
        assert_eq!(v, Version::new(1, 2, 3));
        assert_eq!(Bump::Major.apply(v).to_string(), "2.0.0");
        assert_eq!(Bump::Minor.apply(v).to_string(), "1.3.0");
        assert_eq!(Bump::Patch.apply(v).to_string(), "1.2.4");
        for bad in ["1.2", "1.2.3.4", "v1.2.3", "01.2.3", "1.x.3", ""] {
            assert!(bad.parse::<Version>().is_err(), "{bad}");
        }
        assert_eq!(declared_bump(v, Version::new(2, 0, 0)), Some(Bump::Major));
        assert_eq!(declared_bump(v, Version::new(1, 3, 0)), Some(Bump::Minor));
        assert_eq!(declared_bump(v, Version::new(1, 2, 4)), Some(Bump::Patch));
        assert_eq!(declared_bump(v, v), Some(Bump::None));
        assert_eq!(declared_bump(v, Version::new(1, 1, 9)), None);
    }

    fn report(needed: Bump) -> Report {
        Report {
            mode: crate::evolution::Mode::Seed,
            policy: crate::evolution::Policy::Lenient,
            changes: Vec::new(),
            compatible: needed != Bump::Major,
            backward: crate::evolution::Verdict::Compatible,
            forward: crate::evolution::Verdict::Compatible,
            needed_bump: needed,
        }
    }

    #[test]
    fn the_same_version_passes_only_when_nothing_changed() {
        let same = check_bump("1.2.3", "1.2.3", &report(Bump::None)).unwrap();
        assert_eq!(same.violation, None);
        assert_eq!(same.declared, Some(Bump::None));
        let changed = check_bump("1.2.3", "1.2.3", &report(Bump::Patch)).unwrap();
        assert_eq!(
            changed.violation.as_deref(),
            Some("version 1.2.3 declares a none bump over 1.2.3, but the schema changed: it needs a patch bump, i.e. at least 1.2.4")
        );
        let larger = check_bump("1.2.3", "2.0.0", &report(Bump::Minor)).unwrap();
        assert_eq!(larger.violation, None);
        let smaller = check_bump("1.2.3", "1.3.0", &report(Bump::Major)).unwrap();
        assert!(smaller
            .violation
            .unwrap()
            .contains("needs a major bump, i.e. at least 2.0.0"));
        let older = check_bump("1.2.3", "1.2.2", &report(Bump::None)).unwrap();
        assert_eq!(
            older.violation.as_deref(),
            Some("version 1.2.2 is not greater than 1.2.3")
        );
    }
}
