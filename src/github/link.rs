//! The `link` header: `<https://…?page=2>; rel="next", <https://…?page=9>; rel="last"`.
//! The URLs are followed exactly as given (they may name `/repositories/{id}/…`).

/// The URL whose `rel` includes `next`, if any. Malformed parts are skipped.
pub fn next_url(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let after_open = &rest[open + 1..];
        let close = after_open.find('>')?;
        let url = after_open[..close].trim();
        let params_and_rest = &after_open[close + 1..];
        // The parameters of this link run up to the next '<'.
        let params_end = params_and_rest.find('<').unwrap_or(params_and_rest.len());
        let params = &params_and_rest[..params_end];
        if params.split(';').any(|p| is_rel_next(p.trim())) && !url.is_empty() {
            return Some(url.to_owned());
        }
        rest = &params_and_rest[params_end..];
    }
    None
}

fn is_rel_next(param: &str) -> bool {
    let Some((key, value)) = param.split_once('=') else {
        return false;
    };
    key.trim().eq_ignore_ascii_case("rel")
        && value
            .trim()
            .trim_end_matches(',')
            .trim()
            .trim_matches('"')
            .split_ascii_whitespace()
            .any(|rel| rel.eq_ignore_ascii_case("next"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn finds_next_among_other_relations() {
        let header = r#"<https://api.github.com/repositories/1300192/pulls?state=all&page=1>; rel="prev", <https://api.github.com/repositories/1300192/pulls?state=all&page=3>; rel="next", <https://api.github.com/repositories/1300192/pulls?state=all&page=9>; rel="last""#;
        assert_eq!(
            next_url(header).as_deref(),
            Some("https://api.github.com/repositories/1300192/pulls?state=all&page=3")
        );
    }

    #[test]
    fn no_next_on_the_last_page_or_garbage() {
        assert_eq!(next_url(r#"<https://x/?page=1>; rel="first""#), None);
        assert_eq!(next_url("garbage"), None);
        assert_eq!(next_url("<unterminated; rel=\"next\""), None);
        assert_eq!(next_url(r#"<>; rel="next""#), None);
    }

    proptest! {
        #[test]
        fn never_panics(header in ".*") {
            let _ = next_url(&header);
        }

        #[test]
        fn finds_next_whatever_the_order_spacing_and_case(
            url in "https://[a-z]{1,10}/[a-z0-9?=&]{0,20}",
            others in proptest::collection::vec(prop_oneof![Just("prev"), Just("last"), Just("first")], 0..3),
            at in 0usize..4,
            space in "[ ]{0,3}",
            upper in any::<bool>(),
        ) {
            let rel = if upper { "NEXT" } else { "next" };
            let mut parts: Vec<String> = others
                .iter()
                .enumerate()
                .map(|(i, r)| format!("<https://x/{i}>;{space}rel=\"{r}\""))
                .collect();
            let at = at.min(parts.len());
            parts.insert(at, format!("<{url}>;{space}rel=\"{rel}\""));
            prop_assert_eq!(next_url(&parts.join(&format!(",{space}"))), Some(url));
        }

        #[test]
        fn a_found_url_is_never_empty_and_never_holds_a_closing_bracket(header in "[<>; =\",a-z/:.]{0,60}") {
            if let Some(url) = next_url(&header) {
                prop_assert!(!url.is_empty());
                prop_assert!(!url.contains('>'));
                prop_assert!(header.contains(&url));
            }
        }

        #[test]
        fn finds_any_next_url(url in "https://[a-z]{1,10}/[a-z0-9?=&]{0,20}") {
            let header = format!("<{url}>; rel=\"next\", <https://x/last>; rel=\"last\"");
            prop_assert_eq!(next_url(&header), Some(url));
        }
    }
}
