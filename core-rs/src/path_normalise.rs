//! The request path is normalised before routing, and that normalised path is what the
//! upstream gets: otherwise `/public/../private/x` matches an open `/public/*` route and an
//! upstream that resolves dot-segments itself serves `/private/x` with no auth.
//!
//! What is done, in this order (as nginx and Envoy's `normalize_path` do):
//! 1. percent-escapes of unreserved characters (RFC 3986 2.3: `A-Z a-z 0-9 - . _ ~`) are
//!    decoded, other escapes keep their meaning with upper-case hex (RFC 3986 6.2.2.1).
//!    Decoding happens once: `%252e` stays `%252e`, never `.`.
//! 2. escaped slashes (`%2F`, `%5C`) and raw backslashes are refused, kept as data, or
//!    decoded to `/` (`EscapedSlashes`, like Envoy's `path_with_escaped_slashes_action`).
//! 3. dot-segments are resolved (RFC 3986 5.2.4) and, optionally, `//` merged into `/`.
//!
//! Refused outright: a path that climbs above the root, a dot-segment with path parameters
//! (`..;/`, which Tomcat and Jetty read as `..`), escaped control bytes (`%00`, `%0A`) and
//! the overlong UTF-8 lead bytes `%C0`/`%C1`, and broken escapes (`%zz`, `%4`).
//!
//! Routing then ignores path parameters (`without_params`): Tomcat, Jetty and Spring serve
//! `/private;x/y` as `/private/y`, so it must meet `/private/*`'s auth, not a catch-all's.
//!
//! A path that is already normal is returned borrowed: the hot path scans it once and
//! allocates nothing.

use std::borrow::Cow;

use crate::config::EscapedSlashes;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    EscapedSlash,
    Backslash,
    AboveRoot,
    DotSegmentWithParams,
    ControlByte,
    OverlongUtf8,
    BadEscape,
}

impl PathError {
    pub fn message(self) -> &'static str {
        match self {
            PathError::EscapedSlash => "the path contains an escaped slash (%2F or %5C)",
            PathError::Backslash => "the path contains a backslash",
            PathError::AboveRoot => "the path climbs above the root with '..'",
            PathError::DotSegmentWithParams => {
                "the path has a '.' or '..' segment with parameters (';')"
            }
            PathError::ControlByte => "the path contains an escaped control character",
            PathError::OverlongUtf8 => "the path contains an invalid UTF-8 escape (%C0 or %C1)",
            PathError::BadEscape => "the path contains a malformed percent-escape",
        }
    }
}

/// The normal form of `path` (an origin-form path, starting with `/`; anything else, such
/// as OPTIONS' `*`, is returned as it is).
pub fn normalise(path: &str, rules: PathRules) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Ok(Cow::Borrowed(path));
    }
    match decode(path, rules.escaped_slashes)? {
        Cow::Borrowed(p) => resolve_segments(p, rules.merge_slashes),
        Cow::Owned(p) => Ok(Cow::Owned(
            resolve_segments(&p, rules.merge_slashes)?.into_owned(),
        )),
    }
}

/// The path the router matches: every segment's `;parameters` cut off (`/a;v=1/b;x` is
/// `/a/b`). The upstream still gets them. An escaped `%3B` is data, as for those servers.
pub fn without_params(path: &str) -> Cow<'_, str> {
    if !path.contains(';') {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split_once(';').map_or(segment, |(name, _)| name));
    }
    Cow::Owned(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Steps 1 and 2. `out` stays `None` while the output equals the input so far; the first
/// change copies the unchanged prefix into a new buffer.
fn decode(path: &str, slashes: EscapedSlashes) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    let mut out: Option<Vec<u8>> = None;
    fn changed<'b>(out: &'b mut Option<Vec<u8>>, bytes: &[u8], i: usize) -> &'b mut Vec<u8> {
        out.get_or_insert_with(|| {
            let mut v = Vec::with_capacity(bytes.len());
            v.extend_from_slice(&bytes[..i]);
            v
        })
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => {
                let (hi, lo) = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&hi), Some(&lo)) => (hi, lo),
                    _ => return Err(PathError::BadEscape),
                };
                let value = match (hex_value(hi), hex_value(lo)) {
                    (Some(h), Some(l)) => h << 4 | l,
                    _ => return Err(PathError::BadEscape),
                };
                if value < 0x20 || value == 0x7f {
                    return Err(PathError::ControlByte);
                }
                if value == 0xc0 || value == 0xc1 {
                    return Err(PathError::OverlongUtf8);
                }
                let slash = value == b'/' || value == b'\\';
                if is_unreserved(value) || (slash && slashes == EscapedSlashes::Decode) {
                    let decoded = if slash { b'/' } else { value };
                    changed(&mut out, bytes, i).push(decoded);
                } else if slash && slashes == EscapedSlashes::Reject {
                    return Err(PathError::EscapedSlash);
                } else {
                    let upper = [b'%', hi.to_ascii_uppercase(), lo.to_ascii_uppercase()];
                    if upper[1] != hi || upper[2] != lo {
                        changed(&mut out, bytes, i);
                    }
                    if let Some(o) = out.as_mut() {
                        o.extend_from_slice(&upper);
                    }
                }
                i += 3;
                continue;
            }
            b'\\' => match slashes {
                EscapedSlashes::Reject => return Err(PathError::Backslash),
                EscapedSlashes::Decode => changed(&mut out, bytes, i).push(b'/'),
                EscapedSlashes::Keep => {
                    if let Some(o) = out.as_mut() {
                        o.push(b)
                    }
                }
            },
            _ if b < 0x20 || b == 0x7f => return Err(PathError::ControlByte),
            _ => {
                if let Some(o) = out.as_mut() {
                    o.push(b)
                }
            }
        }
        i += 1;
    }
    Ok(match out {
        None => Cow::Borrowed(path),
        // Only ASCII bytes were written in place of escapes, and every other byte was
        // copied from a &str, so the buffer is still UTF-8; no panic on a request path
        // even so.
        Some(v) => Cow::Owned(String::from_utf8(v).map_err(|_| PathError::BadEscape)?),
    })
}

/// A `.` or `..` segment once its path parameters (`;...`) are cut off, and whether it had
/// any.
fn dot_segment(segment: &str) -> Option<(bool, bool)> {
    let (name, params) = match segment.split_once(';') {
        Some((name, _)) => (name, true),
        None => (segment, false),
    };
    match name {
        "." => Some((false, params)),
        ".." => Some((true, params)),
        _ => None,
    }
}

/// Step 3, on a path that starts with `/`.
fn resolve_segments(path: &str, merge_slashes: bool) -> Result<Cow<'_, str>, PathError> {
    let segments = || path[1..].split('/');
    let count = segments().count();
    let mut clean = true;
    for (i, segment) in segments().enumerate() {
        if let Some((_, true)) = dot_segment(segment) {
            return Err(PathError::DotSegmentWithParams);
        }
        let last = i + 1 == count;
        if dot_segment(segment).is_some() || (merge_slashes && segment.is_empty() && !last) {
            clean = false;
        }
    }
    if clean {
        return Ok(Cow::Borrowed(path));
    }
    let mut kept: Vec<&str> = Vec::with_capacity(count);
    for (i, segment) in segments().enumerate() {
        let last = i + 1 == count;
        match dot_segment(segment) {
            Some((up, _)) => {
                if up && kept.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                if last {
                    kept.push(""); // "/a/b/.." is "/a/": the directory, not the file
                }
            }
            None if merge_slashes && segment.is_empty() && !last => {}
            None => kept.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests;
