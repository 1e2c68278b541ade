//! Network strings embedded in binaries and scripts: URLs, domain names
//! with a known top-level domain, and IP addresses, from printable ASCII
//! runs and UTF-16LE runs (Windows binaries keep many strings wide).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use turncoat_core::observable::{has_known_tld, normalize_domain, normalize_ip};

/// Shortest run worth searching.
const MIN_RUN: usize = 6;
/// Longest run kept whole: longer ones are searched in pieces.
const MAX_RUN: usize = 4096;
/// Most strings kept from one file.
const MAX_STRINGS: usize = 5_000;

// Runs are printable ASCII, so ASCII word boundaries (`(?-u:\b)`) mean the
// same as Unicode ones, and unlike them let the regex crate use its DFA.
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)(?:https?|ftps?|wss?)://[^\s\x22'<>`{}|\\^]{3,512}").unwrap()
});
static DOMAIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?-u:\b)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{1,23}(?-u:\b)",
    )
    .unwrap()
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?-u:\b)(?:[0-9]{1,3}\.){3}[0-9]{1,3}(?-u:\b)").unwrap());

/// Printable ASCII runs and UTF-16LE runs of `data`, at least `MIN_RUN` long.
fn runs(data: &[u8], mut each: impl FnMut(&str)) {
    let printable = |b: u8| (0x20..0x7f).contains(&b);
    let mut start = None;
    for (i, &b) in data.iter().enumerate() {
        match (printable(b), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                if i - s >= MIN_RUN {
                    emit(&data[s..i], &mut each);
                }
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start
        && data.len() - s >= MIN_RUN
    {
        emit(&data[s..], &mut each);
    }
    // UTF-16LE: printable bytes at even offsets, zeros between.
    for parity in 0..2 {
        let mut text = Vec::new();
        let mut i = parity;
        while i + 1 < data.len() {
            let (lo, hi) = (data[i], data[i + 1]);
            if hi == 0 && printable(lo) {
                text.push(lo);
            } else {
                if text.len() >= MIN_RUN {
                    emit(&text, &mut each);
                }
                text.clear();
            }
            i += 2;
        }
        if text.len() >= MIN_RUN {
            emit(&text, &mut each);
        }
    }
}

fn emit(run: &[u8], each: &mut impl FnMut(&str)) {
    for piece in run.chunks(MAX_RUN) {
        // Printable ASCII only, so always UTF-8.
        if let Ok(s) = std::str::from_utf8(piece) {
            each(s);
        }
    }
}

/// URLs, domains and IPs found in `data`, normalised.
pub fn network_strings(data: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    runs(data, |s| {
        if out.len() >= MAX_STRINGS || !s.contains('.') {
            return;
        }
        let mut in_urls = Vec::new();
        for m in URL.find_iter(s) {
            out.insert(m.as_str().trim_end_matches(['.', ',', ';', ')']).to_owned());
            in_urls.push(m.range());
        }
        for m in DOMAIN.find_iter(s) {
            if in_urls.iter().any(|r| r.contains(&m.start())) {
                continue;
            }
            if let Some(d) = normalize_domain(m.as_str())
                && has_known_tld(&d)
            {
                out.insert(d);
            }
        }
        for m in IPV4.find_iter(s) {
            if let Some(ip) = normalize_ip(m.as_str()) {
                out.insert(ip);
            }
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_wide_strings() {
        let mut data =
            b"\x00\x01https://akamaicontainer.com/x?y=1\x00junk ffmpeg.dll \x00".to_vec();
        for c in "msedgepackageinfo.com".bytes() {
            data.extend([c, 0]);
        }
        data.extend(b"\x00\x00 connect 203.0.113.7 now\x00 version 1.2.3 README.txt");
        let found = network_strings(&data);
        assert!(
            found.contains("https://akamaicontainer.com/x?y=1"),
            "{found:?}"
        );
        assert!(found.contains("msedgepackageinfo.com"), "{found:?}");
        assert!(found.contains("203.0.113.7"), "{found:?}");
        assert!(
            !found
                .iter()
                .any(|s| s.contains("ffmpeg.dll") || s.contains("readme")),
            "{found:?}"
        );
        assert!(
            !found.contains("akamaicontainer.com"),
            "a URL's host is not listed twice"
        );
    }
}
