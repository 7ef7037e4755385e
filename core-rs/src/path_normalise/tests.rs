//! The normaliser's cases: what is decoded, resolved, merged, kept and refused.

use super::*;

const DEFAULT: PathRules = PathRules {
    merge_slashes: true,
    escaped_slashes: EscapedSlashes::Reject,
};

fn norm(path: &str) -> Result<String, PathError> {
    normalise(path, DEFAULT).map(Cow::into_owned)
}

fn with(path: &str, merge_slashes: bool, escaped_slashes: EscapedSlashes) -> String {
    let rules = PathRules {
        merge_slashes,
        escaped_slashes,
    };
    normalise(path, rules).unwrap().into_owned()
}

#[test]
fn clean_paths_are_borrowed_unchanged() {
    for path in [
        "/",
        "/a",
        "/a/b/c",
        "/a/b/",
        "/a.b/c..d/...",
        "/.well-known/x",
        "/..a/.b/b.",
        "/a%20b/%E2%82%AC",
        "/a;v=1/b",
        "/%252e%252e",
        "/{not-a-param}/~x",
        "*",
    ] {
        assert!(
            matches!(normalise(path, DEFAULT), Ok(Cow::Borrowed(p)) if p == path),
            "{path}"
        );
    }
}

#[test]
fn dot_segments_are_resolved() {
    let cases = [
        ("/a/../b", "/b"),
        ("/a/./b", "/a/b"),
        ("/a/b/../../c", "/c"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/..", "/"),
        ("/.", "/"),
        ("/./a", "/a"),
        ("/a/./../b/./c/..", "/b/"),
        ("/public/../private/x", "/private/x"),
        ("/public/./../private/x", "/private/x"),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input).as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn unreserved_escapes_are_decoded_once() {
    let cases = [
        ("/public/%2e%2e/private", "/private"),
        ("/public/%2E%2e/private", "/private"),
        ("/public/.%2E/private", "/private"),
        ("/public/%2e./private", "/private"),
        ("/a/%2e/b", "/a/b"),
        ("/pub%6cic/x", "/public/x"),
        ("/%7euser/%41%2D%5f", "/~user/A-_"),
        ("/%252e%252e/x", "/%252e%252e/x"),
        ("/%25%32%65", "/%252e"),
    ];
    for (input, expected) in cases {
        assert_eq!(norm(input).as_deref(), Ok(expected), "{input}");
    }
}

#[test]
fn other_escapes_stay_with_upper_case_hex() {
    assert_eq!(norm("/a%3fb%23c").as_deref(), Ok("/a%3Fb%23c"));
    assert_eq!(norm("/%e2%82%ac").as_deref(), Ok("/%E2%82%AC"));
    assert_eq!(norm("/x%20y").as_deref(), Ok("/x%20y"));
    assert_eq!(norm("/%3b/%3B").as_deref(), Ok("/%3B/%3B"));
}

#[test]
fn slashes_are_merged_by_default_and_kept_on_request() {
    assert_eq!(norm("//a").as_deref(), Ok("/a"));
    assert_eq!(norm("///a//b//").as_deref(), Ok("/a/b/"));
    assert_eq!(norm("//").as_deref(), Ok("/"));
    assert_eq!(norm("/a//../b").as_deref(), Ok("/b"));
    assert_eq!(with("//a//b", false, EscapedSlashes::Reject), "//a//b");
    // Without merging, an empty segment is a level for '..' (RFC 3986 5.2.4).
    assert_eq!(with("/a//../b", false, EscapedSlashes::Reject), "/a/b");
    assert_eq!(with("/a//./b", false, EscapedSlashes::Reject), "/a//b");
}

#[test]
fn climbing_above_the_root_is_refused() {
    for path in [
        "/..",
        "/../a",
        "/a/../..",
        "/a/../../b",
        "/%2e%2e",
        "/a/%2E%2E/%2e%2e/b",
        "/./..",
    ] {
        assert_eq!(norm(path), Err(PathError::AboveRoot), "{path}");
    }
}

#[test]
fn escaped_slashes_and_backslashes_are_refused_by_default() {
    for path in ["/a%2fb", "/a%2Fb", "/..%2f", "/a%5cb", "/a%5Cb"] {
        assert_eq!(norm(path), Err(PathError::EscapedSlash), "{path}");
    }
    for path in ["/a\\b", "/..\\x", "\\"] {
        let expected = if path.starts_with('/') {
            Err(PathError::Backslash)
        } else {
            Ok(path.to_string()) // not a path at all: left to the router (404)
        };
        assert_eq!(norm(path), expected, "{path}");
    }
}

#[test]
fn escaped_slashes_can_be_kept_as_data() {
    let keep = EscapedSlashes::Keep;
    assert_eq!(with("/a/..%2fb", true, keep), "/a/..%2Fb");
    assert_eq!(with("/a%5cb", true, keep), "/a%5Cb");
    assert_eq!(with("/a\\..\\b", true, keep), "/a\\..\\b");
    // Kept slashes are no separators: this ".." is part of a segment name.
    assert_eq!(with("/a/..%2F..%2Fb/../c", true, keep), "/a/c");
}

#[test]
fn escaped_slashes_can_be_decoded_before_dot_segments() {
    let decode = EscapedSlashes::Decode;
    assert_eq!(with("/public/..%2fprivate", true, decode), "/private");
    assert_eq!(with("/public/..%5Cprivate", true, decode), "/private");
    assert_eq!(with("/public\\..\\private", true, decode), "/private");
    assert_eq!(with("/a%2f%2fb", true, decode), "/a/b");
    assert_eq!(with("/a%2f%2fb", false, decode), "/a//b");
    let rules = PathRules {
        merge_slashes: true,
        escaped_slashes: decode,
    };
    assert_eq!(
        normalise("/a%2f..%2f..%2fb", rules),
        Err(PathError::AboveRoot)
    );
}

#[test]
fn dot_segments_with_parameters_are_refused() {
    for path in [
        "/a/..;/b",
        "/a/..;jsessionid=x/b",
        "/a/.;/b",
        "/a/%2e%2e;/b",
        "/..;",
        "/a/.;x",
    ] {
        assert_eq!(norm(path), Err(PathError::DotSegmentWithParams), "{path}");
    }
    // Parameters on ordinary segments, and an escaped ';', are data.
    assert_eq!(norm("/a;x/..").as_deref(), Ok("/"));
    assert_eq!(norm("/..%3B/b").as_deref(), Ok("/..%3B/b"));
    assert_eq!(norm("/...;x").as_deref(), Ok("/...;x"));
}

#[test]
fn control_bytes_overlong_utf8_and_broken_escapes_are_refused() {
    for path in ["/%00", "/a%0d%0ab", "/%1F", "/%7f", "/a\u{1}b", "/a\u{7f}"] {
        assert_eq!(norm(path), Err(PathError::ControlByte), "{path:?}");
    }
    for path in ["/%c0%ae%c0%ae/x", "/%C1%9C", "/%c0%af"] {
        assert_eq!(norm(path), Err(PathError::OverlongUtf8), "{path}");
    }
    for path in ["/%", "/%2", "/%zz", "/%g0", "/a%2", "/%%41"] {
        assert_eq!(norm(path), Err(PathError::BadEscape), "{path}");
    }
}

#[test]
fn non_ascii_bytes_pass_through() {
    assert_eq!(norm("/caf\u{e9}/../x").as_deref(), Ok("/x"));
    assert_eq!(norm("/caf\u{e9}/%2e").as_deref(), Ok("/caf\u{e9}/"));
}

#[test]
fn normalising_is_idempotent() {
    for path in [
        "/a/../b/%2e/c//d/%7e",
        "/x/%e2%82%ac/./y/..",
        "//a/./b/../../c/",
        "/%252e/%41",
    ] {
        let once = norm(path).unwrap();
        assert_eq!(norm(&once).unwrap(), once, "{path}");
    }
}

#[test]
fn routing_ignores_path_parameters() {
    for (path, routed) in [
        ("/a/b", "/a/b"),
        ("/private;x/y", "/private/y"),
        ("/private;jsessionid=1;a=b/y;v=2", "/private/y"),
        ("/a;/b", "/a/b"),
        ("/;x/b", "//b"),
        ("/a%3Bx/b", "/a%3Bx/b"),
    ] {
        assert_eq!(without_params(path), routed, "{path}");
    }
    assert!(matches!(without_params("/a/b"), Cow::Borrowed(_)));
}
