//! RFC 3986 reference resolution, just enough for `$id` and `$ref`.
//!
//! Why hand-written: the diff engine must resolve `../common/1.0.0.json#/$defs/uuid`
//! against a contract file's base URI without network or filesystem access, and the
//! workspace has no URI crate. The algorithm is the one of RFC 3986 §5.2 (merge paths,
//! remove dot segments), which is small and fully testable here.

/// The five components of a URI reference (RFC 3986 §3), borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
    fragment: Option<&'a str>,
}

fn parse(s: &str) -> Parts<'_> {
    let (rest, fragment) = match s.find('#') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (rest, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut scheme = None;
    let mut rest = rest;
    if let Some(i) = rest.find(':') {
        let candidate = &rest[..i];
        let valid = candidate
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !candidate.contains('/');
        if valid {
            scheme = Some(candidate);
            rest = &rest[i + 1..];
        }
    }
    let (authority, path) = if let Some(after) = rest.strip_prefix("//") {
        match after.find('/') {
            Some(i) => (Some(&after[..i]), &after[i..]),
            None => (Some(after), ""),
        }
    } else {
        (None, rest)
    };
    Parts {
        scheme,
        authority,
        path,
        query,
        fragment,
    }
}

fn remove_dot_segments(path: &str) -> String {
    let mut output: Vec<&str> = Vec::new();
    let absolute = path.starts_with('/');
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len().saturating_sub(1);
    let mut trailing_slash = false;
    for (i, seg) in segments.iter().enumerate() {
        match *seg {
            "." => trailing_slash = i == last,
            ".." => {
                if output.len() > usize::from(absolute) {
                    output.pop();
                }
                trailing_slash = i == last;
            }
            s => {
                output.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut joined = output.join("/");
    if absolute && !joined.starts_with('/') {
        joined.insert(0, '/');
    }
    if trailing_slash && !joined.ends_with('/') {
        joined.push('/');
    }
    joined
}

fn merge(base: &Parts<'_>, reference_path: &str) -> String {
    if base.authority.is_some() && base.path.is_empty() {
        format!("/{reference_path}")
    } else {
        match base.path.rfind('/') {
            Some(i) => format!("{}{}", &base.path[..=i], reference_path),
            None => reference_path.to_string(),
        }
    }
}

fn compose(p: &Parts<'_>, path: &str) -> String {
    let mut out = String::new();
    if let Some(s) = p.scheme {
        out.push_str(s);
        out.push(':');
    }
    if let Some(a) = p.authority {
        out.push_str("//");
        out.push_str(a);
    }
    out.push_str(path);
    if let Some(q) = p.query {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = p.fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Resolves `reference` against `base` (RFC 3986 §5.2.2), keeping the reference's
/// fragment. Used for every `$id` and `$ref` so that relative contract references work.
pub(crate) fn resolve(base: &str, reference: &str) -> String {
    let r = parse(reference);
    let b = parse(base);
    let (scheme, authority, path, query);
    if r.scheme.is_some() {
        scheme = r.scheme;
        authority = r.authority;
        path = remove_dot_segments(r.path);
        query = r.query;
    } else {
        scheme = b.scheme;
        if r.authority.is_some() {
            authority = r.authority;
            path = remove_dot_segments(r.path);
            query = r.query;
        } else {
            authority = b.authority;
            if r.path.is_empty() {
                path = b.path.to_string();
                query = r.query.or(b.query);
            } else {
                path = if r.path.starts_with('/') {
                    remove_dot_segments(r.path)
                } else {
                    remove_dot_segments(&merge(&b, r.path))
                };
                query = r.query;
            }
        }
    }
    compose(
        &Parts {
            scheme,
            authority,
            path: "",
            query,
            fragment: r.fragment,
        },
        &path,
    )
}

/// Splits `uri#fragment` into the document part and the (possibly empty) fragment.
pub(crate) fn split_fragment(uri: &str) -> (&str, &str) {
    match uri.find('#') {
        Some(i) => (&uri[..i], &uri[i + 1..]),
        None => (uri, ""),
    }
}

/// Decodes `%XX` escapes in a URI fragment, as JSON Pointer fragments require
/// (`#/$defs/a%20b`). Invalid escapes are kept verbatim rather than rejected.
pub(crate) fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3986_examples() {
        let base = "http://a/b/c/d;p?q";
        let cases = [
            ("g", "http://a/b/c/g"),
            ("./g", "http://a/b/c/g"),
            ("g/", "http://a/b/c/g/"),
            ("/g", "http://a/g"),
            ("//g", "http://g"),
            ("?y", "http://a/b/c/d;p?y"),
            ("#s", "http://a/b/c/d;p?q#s"),
            ("", "http://a/b/c/d;p?q"),
            (".", "http://a/b/c/"),
            ("..", "http://a/b/"),
            ("../g", "http://a/b/g"),
            ("../..", "http://a/"),
            ("../../g", "http://a/g"),
            ("../../../g", "http://a/g"),
            ("g;x=1/../y", "http://a/b/c/y"),
            ("urn:x:y", "urn:x:y"),
        ];
        for (r, expected) in cases {
            assert_eq!(resolve(base, r), expected, "resolving {r:?}");
        }
    }

    #[test]
    fn contract_relative_reference() {
        assert_eq!(
            resolve(
                "herald:/contracts/UsageEvent/1.0.0.json",
                "../common/1.0.0.json#/$defs/uuid"
            ),
            "herald:/contracts/common/1.0.0.json#/$defs/uuid"
        );
        assert_eq!(split_fragment("a.json#/$defs/x"), ("a.json", "/$defs/x"));
        assert_eq!(percent_decode("/a%20b/%zz"), "/a b/%zz");
    }
}
