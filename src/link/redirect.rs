//! The redirect allow-list's path rule.

/// Whether `path` is `allowed` or lies under it, on a segment boundary: `/mypage` admits
/// `/mypage`, `/mypage/` and `/mypage/line` (a query is not part of the path), never
/// `/mypage-evil` or `/mypages`. An allowed path ending in `/` admits what starts with it.
pub(crate) fn path_within(allowed: &str, path: &str) -> bool {
    match path.strip_prefix(allowed) {
        None => false,
        Some(rest) => rest.is_empty() || allowed.ends_with('/') || rest.starts_with('/'),
    }
}

#[cfg(test)]
mod tests {
    use super::path_within;

    #[test]
    fn paths_match_on_segment_boundaries() {
        for (allowed, path) in [
            ("/mypage", "/mypage"),
            ("/mypage", "/mypage/"),
            ("/mypage", "/mypage/line"),
            ("/", "/x"),
            ("/a/", "/a/b"),
        ] {
            assert!(path_within(allowed, path), "{allowed} should admit {path}");
        }
        for (allowed, path) in [
            ("/mypage", "/mypage-evil"),
            ("/mypage", "/mypages"),
            ("/mypage", "/my"),
            ("/a/", "/a"),
        ] {
            assert!(!path_within(allowed, path), "{allowed} should refuse {path}");
        }
    }
}
