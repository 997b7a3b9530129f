//! The request headers a simulated client adds to what the protocol needs, per
//! `swarm.headers`. Bandwidth figures depend on them: a poll that carries a browser's
//! headers and cookies costs several times the bytes of one that carries only a token.

use hyper::header::{HeaderName, HeaderValue};
use rand::{Rng, SeedableRng};

use crate::scenario::Headers;

/// Extra headers for every request of one swarm (shared by all clients; values are cheap
/// to clone). `host` is the address the client connects to, for the Referer.
pub fn extra(profile: Headers, host: &str) -> Vec<(HeaderName, HeaderValue)> {
    let Headers::Browser { cookie_bytes } = profile else {
        return Vec::new();
    };
    let mut out: Vec<(&'static str, String)> = vec![
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/131.0.0.0 Safari/537.36"
                .into(),
        ),
        ("accept", "application/json, text/plain, */*".into()),
        ("accept-language", "en-US,en;q=0.9".into()),
        ("accept-encoding", "gzip, deflate, br, zstd".into()),
        ("referer", format!("http://{host}/inbox")),
        (
            "sec-ch-ua",
            "\"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"".into(),
        ),
        ("sec-ch-ua-mobile", "?0".into()),
        ("sec-ch-ua-platform", "\"Linux\"".into()),
        ("sec-fetch-dest", "empty".into()),
        ("sec-fetch-mode", "cors".into()),
        ("sec-fetch-site", "same-origin".into()),
    ];
    if cookie_bytes > 0 {
        out.push(("cookie", cookie(cookie_bytes)));
    }
    out.into_iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(&v).expect("header values are visible ASCII"),
            )
        })
        .collect()
}

/// A Cookie value of exactly `len` bytes: a session id, a preference and an analytics id,
/// then filler, as a web app's cookies look.
fn cookie(len: usize) -> String {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut alnum = |n: usize| -> String {
        (0..n)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect()
    };
    let mut s = format!("sid={}; theme=light; _ga=GA1.1.{}", alnum(32), alnum(20));
    if s.len() < len {
        s.push_str("; _pref=");
        let fill = len.saturating_sub(s.len());
        s.push_str(&alnum(fill));
    }
    s.truncate(len);
    // A value may not end in a space or a separator we cut through.
    while s.ends_with([' ', ';', '=']) {
        s.pop();
        s.push('x');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes a header list adds to a request on the wire: `name: value\r\n` each.
    pub fn wire_bytes(headers: &[(HeaderName, HeaderValue)]) -> usize {
        headers
            .iter()
            .map(|(k, v)| k.as_str().len() + 2 + v.len() + 2)
            .sum()
    }

    #[test]
    fn minimal_adds_nothing_and_browser_adds_a_cookie_of_the_asked_size() {
        assert!(extra(Headers::Minimal, "127.0.0.1:1").is_empty());
        for len in [0usize, 1, 10, 61, 800, 4000] {
            let h = extra(Headers::Browser { cookie_bytes: len }, "127.0.0.1:1");
            let cookie = h.iter().find(|(k, _)| k == "cookie").map(|(_, v)| v.len());
            assert_eq!(cookie.unwrap_or(0), len, "cookie of {len}");
            assert!(h.iter().any(|(k, _)| k == "user-agent"));
        }
        let with = wire_bytes(&extra(Headers::Browser { cookie_bytes: 800 }, "h:1"));
        let without = wire_bytes(&extra(Headers::Browser { cookie_bytes: 0 }, "h:1"));
        assert_eq!(with - without, "cookie: \r\n".len() + 800);
    }
}
