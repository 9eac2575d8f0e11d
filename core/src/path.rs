//! Znode paths: validation exactly as ZooKeeper's `PathUtils.validatePath`, and the small
//! helpers (parent, last segment, ancestry) the tree and the watch manager share.

use std::fmt;

/// Why a path is not a valid znode path; the message matches ZooKeeper's wording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidPath {
    pub path: String,
    pub reason: String,
}

impl fmt::Display for InvalidPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid path string \"{}\" caused by {}", self.path, self.reason)
    }
}

impl std::error::Error for InvalidPath {}

/// Validates a path the way ZooKeeper does before a create (with `sequential` set, the path
/// may end in `/`, since the server appends the sequence number).
pub fn validate_create_path(path: &str, sequential: bool) -> Result<(), InvalidPath> {
    if sequential {
        validate_path(&format!("{path}1")).map_err(|mut error| {
            error.path = path.to_owned();
            error
        })
    } else {
        validate_path(path)
    }
}

/// Validates a znode path: absolute, no empty segments, no `.` or `..` segments, no
/// trailing slash, and none of the characters ZooKeeper refuses.
pub fn validate_path(path: &str) -> Result<(), InvalidPath> {
    let invalid = |reason: String| Err(InvalidPath { path: path.to_owned(), reason });
    if path.is_empty() {
        return invalid("Path length must be > 0".to_owned());
    }
    if !path.starts_with('/') {
        return invalid("Path must start with / character".to_owned());
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return invalid("Path must not end with / character".to_owned());
    }
    // ZooKeeper reports positions in UTF-16 code units; zkd reports them in chars, which is
    // the same for every path that is valid up to the reported position except after a
    // character outside the BMP, which is itself refused.
    if plainly_valid(path.as_bytes()) {
        return Ok(());
    }
    // Paths are nearly always ASCII: read them byte by byte then, without decoding UTF-8.
    // The positions agree either way.
    let problem = if path.is_ascii() {
        first_invalid_char(path[1..].bytes().map(char::from))
    } else {
        first_invalid_char(path[1..].chars())
    };
    match problem {
        Some(reason) => invalid(reason),
        None => Ok(()),
    }
}

/// Whether a path (starting with `/`, not ending with one) is valid on sight: printable
/// ASCII only, and no segment that is empty or starts with a dot. Two passes the compiler
/// vectorizes, since a restart validates millions of paths; anything else gets the full
/// check.
fn plainly_valid(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |printable, &byte| printable & (0x20..0x7f).contains(&byte))
        && !bytes.windows(2).any(|pair| pair[0] == b'/' && (pair[1] == b'/' || pair[1] == b'.'))
}

/// The first rule that the characters after a path's leading `/` break, with the position.
fn first_invalid_char(chars: impl Iterator<Item = char>) -> Option<String> {
    let mut before_previous = None;
    let mut previous = '/';
    let mut rest = chars.peekable();
    let mut index = 0;
    while let Some(c) = rest.next() {
        index += 1;
        let next_ends_segment = matches!(rest.peek(), None | Some('/'));
        if c == '\0' {
            return Some(format!("null character not allowed @{index}"));
        }
        if c == '/' && previous == '/' {
            return Some(format!("empty node name specified @{index}"));
        }
        if c == '.' && previous == '.' && before_previous == Some('/') && next_ends_segment {
            return Some(format!("relative paths not allowed @{index}"));
        }
        if c == '.' && previous == '/' && next_ends_segment {
            return Some(format!("relative paths not allowed @{index}"));
        }
        if is_refused_char(c) {
            return Some(format!("invalid character @{index}"));
        }
        before_previous = Some(previous);
        previous = c;
    }
    None
}

/// The characters ZooKeeper refuses in a path: control characters, the surrogate and
/// private-use ranges (so everything outside the Basic Multilingual Plane, which Java sees
/// as surrogate pairs), and U+FFF0..U+FFFF.
fn is_refused_char(c: char) -> bool {
    let code = u32::from(c);
    (0x01..=0x1f).contains(&code)
        || (0x7f..=0x9f).contains(&code)
        || (0xd800..=0xf8ff).contains(&code)
        || (0xfff0..=0xffff).contains(&code)
        || code > 0xffff
}

/// The parent of a valid path; the root's parent is `None`.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    match path.rfind('/') {
        Some(0) => Some("/"),
        Some(index) => Some(&path[..index]),
        None => None,
    }
}

/// The last segment of a valid path (the empty string for the root).
pub fn last_segment(path: &str) -> &str {
    match path.rfind('/') {
        Some(index) => &path[index + 1..],
        None => path,
    }
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `path` is `ancestor` itself or lies below it.
pub fn is_self_or_descendant(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    path == ancestor
        || (path.len() > ancestor.len() && path.starts_with(ancestor) && path.as_bytes()[ancestor.len()] == b'/')
}

/// The path and each of its ancestors, from the path itself up to the root.
pub fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |current| parent(current))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The quick accept never accepts what the full rules refuse.
        #[test]
        fn plainly_valid_paths_pass_the_full_check(path in "/[a/.\\x00\\x01\\x7f é]{0,12}") {
            if path.len() > 1 && !path.ends_with('/') && plainly_valid(path.as_bytes()) {
                prop_assert_eq!(first_invalid_char(path[1..].chars()), None);
            }
        }
    }

    #[test]
    fn valid_paths_pass() {
        for path in ["/", "/a", "/a/b", "/a.b", "/..a", "/a..", "/a/.b/c", "/zookeeper/quota", "/é"] {
            assert_eq!(validate_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn invalid_paths_are_refused_with_zookeepers_reason() {
        let cases = [
            ("", "Path length must be > 0"),
            ("a", "Path must start with / character"),
            ("/a/", "Path must not end with / character"),
            ("//a", "empty node name specified @1"),
            ("/a//b", "empty node name specified @3"),
            ("/a/./b", "relative paths not allowed @3"),
            ("/a/..", "relative paths not allowed @4"),
            ("/.", "relative paths not allowed @1"),
            ("/a\0b", "null character not allowed @2"),
            ("/a\u{1}", "invalid character @2"),
            ("/a\u{7f}", "invalid character @2"),
            ("/\u{e000}", "invalid character @1"),
            ("/\u{fff5}", "invalid character @1"),
            ("/\u{1f600}", "invalid character @1"),
        ];
        for (path, reason) in cases {
            let error = validate_path(path).expect_err(path);
            assert_eq!(error.reason, reason, "{path:?}");
        }
    }

    #[test]
    fn sequential_create_paths_may_end_with_a_slash() {
        assert_eq!(validate_create_path("/a/", true), Ok(()));
        assert!(validate_create_path("/a/", false).is_err());
        assert!(validate_create_path("/a//", true).is_err());
    }

    #[test]
    fn parents_and_segments() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b/c"), Some("/a/b"));
        assert_eq!(last_segment("/a/b"), "b");
        assert_eq!(last_segment("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(self_and_ancestors("/a/b").collect::<Vec<_>>(), vec!["/a/b", "/a", "/"]);
    }

    #[test]
    fn descendants() {
        assert!(is_self_or_descendant("/a/b", "/a"));
        assert!(is_self_or_descendant("/a", "/a"));
        assert!(!is_self_or_descendant("/ab", "/a"));
        assert!(is_self_or_descendant("/ab", "/"));
        assert!(!is_self_or_descendant("/", "/a"));
    }
}
