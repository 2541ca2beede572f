//! URLs as errors, logs and spans show them: scheme, host, port and path, with a query,
//! fragment or user info (where API keys and passwords ride) replaced by `…`. An error is
//! stored with the workflow, returned by the API, shown in the UI and exported in spans; the
//! secret in a URL must reach none of them.

/// `url` with its user info, query and fragment replaced by `…`.
pub fn redacted_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let mut out = String::with_capacity(url.len());
    if let Some(scheme) = scheme {
        out.push_str(scheme);
        out.push_str("://");
    }
    match authority.rsplit_once('@') {
        Some((_, host)) => {
            out.push_str("…@");
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    match tail.find(['?', '#']) {
        Some(cut) => {
            out.push_str(&tail[..=cut]);
            out.push('…');
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redacted_url;

    #[test]
    fn secrets_in_a_url_are_cut_and_the_rest_kept() {
        for (url, shown) in [
            (
                "https://api.example.com/v1/charges",
                "https://api.example.com/v1/charges",
            ),
            (
                "https://api.example.com:8443/v1?api_key=sk_live_1&x=2",
                "https://api.example.com:8443/v1?…",
            ),
            (
                "http://user:pw@db.internal:5984/x",
                "http://…@db.internal:5984/x",
            ),
            ("http://h/p#token=abc", "http://h/p#…"),
            ("http://h?k=v", "http://h?…"),
            ("not a url?secret", "not a url?…"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
    }
}
