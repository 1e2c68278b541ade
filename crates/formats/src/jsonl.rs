//! JSON record streams: NDJSON line by line, or, when the first record
//! spans lines, a whole document holding one value, several concatenated
//! values, or an array of values.

use serde_json::value::RawValue;

use crate::input::{Input, Line, line_of_offset};
use crate::{Limits, Location, ReadIssue, Sink};

/// Calls `each` with the bytes and location of every JSON value in the
/// input. Lines that are not valid JSON are reported and skipped.
pub(crate) fn for_each_record(
    input: &mut Input,
    limits: &Limits,
    sink: &mut dyn Sink,
    mut each: impl FnMut(&[u8], Location, &mut dyn Sink),
) -> Result<(), ReadIssue> {
    let mut line = Vec::new();
    let mut first = true;
    loop {
        match input.next_line(&mut line, limits.max_record_bytes) {
            Err(e) => {
                return Err(input.issue(
                    Location::Line(input.line() + 1),
                    format!("read failed: {e}"),
                ));
            }
            Ok(Line::Eof) => return Ok(()),
            Ok(Line::Idle) => {
                sink.idle();
                continue;
            }
            Ok(Line::TooLong(n)) => {
                sink.skipped(input.issue(
                    Location::Line(input.line()),
                    format!(
                        "record of {n} bytes is over the {} byte limit",
                        limits.max_record_bytes
                    ),
                ));
                first = false;
                continue;
            }
            Ok(Line::Text) => {}
        }
        let text = trim_ascii(&line);
        if text.is_empty() {
            continue;
        }
        let location = Location::Line(input.line());
        if first {
            first = false;
            if let Err(e) = serde_json::from_slice::<&RawValue>(text)
                && (e.is_eof() || text.starts_with(b"["))
            {
                // Pretty-printed or an array: the rest is one document.
                let start_line = input.line();
                let mut doc = std::mem::take(&mut line);
                doc.push(b'\n');
                let rest =
                    input.read_document(limits.max_document_bytes.saturating_sub(doc.len()))?;
                doc.extend_from_slice(&rest);
                return document(input.name(), &doc, start_line, sink, each);
            }
        }
        each(text, location, sink);
    }
}

fn document(
    name: &str,
    doc: &[u8],
    start_line: u64,
    sink: &mut dyn Sink,
    mut each: impl FnMut(&[u8], Location, &mut dyn Sink),
) -> Result<(), ReadIssue> {
    let line_at = |offset: usize| start_line - 1 + line_of_offset(doc, offset);
    let offset_of = |raw: &RawValue| raw.get().as_ptr() as usize - doc.as_ptr() as usize;
    let text = trim_ascii(doc);
    if text.starts_with(b"[") {
        match serde_json::from_slice::<Vec<&RawValue>>(doc) {
            Ok(items) => {
                for raw in items {
                    each(
                        raw.get().as_bytes(),
                        Location::Line(line_at(offset_of(raw))),
                        sink,
                    );
                }
                Ok(())
            }
            Err(e) => Err(ReadIssue::new(
                name,
                Location::Line(start_line - 1 + e.line() as u64),
                e.to_string(),
            )),
        }
    } else {
        let mut stream = serde_json::Deserializer::from_slice(doc).into_iter::<&RawValue>();
        loop {
            let offset = stream.byte_offset();
            match stream.next() {
                None => return Ok(()),
                Some(Ok(raw)) => each(
                    raw.get().as_bytes(),
                    Location::Line(line_at(offset_of(raw))),
                    sink,
                ),
                Some(Err(e)) => {
                    // A broken document cannot be resynchronised: keep what
                    // came before, report where it broke.
                    sink.skipped(ReadIssue::new(
                        name,
                        Location::Line(line_at(offset).max(start_line - 1 + e.line() as u64)),
                        format!("{e}; the rest of the document is skipped"),
                    ));
                    return Ok(());
                }
            }
        }
    }
}

pub(crate) fn trim_ascii(s: &[u8]) -> &[u8] {
    let s = s.strip_prefix(b"\xef\xbb\xbf").unwrap_or(s);
    s.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Collect;

    fn values(text: &str) -> (Vec<(String, Location)>, Vec<ReadIssue>) {
        let mut input = Input::from_bytes("t.json", text.as_bytes().to_vec());
        let mut sink = Collect::default();
        let mut got = Vec::new();
        for_each_record(&mut input, &Limits::default(), &mut sink, |b, loc, _| {
            got.push((String::from_utf8_lossy(b).into_owned(), loc))
        })
        .unwrap();
        (got, sink.skipped)
    }

    #[test]
    fn ndjson_with_a_bad_line() {
        let (got, bad) = values("{\"a\":1}\nnot json\n\n{\"a\":2}\n");
        assert_eq!(got.len(), 3, "every non-empty line reaches the callback");
        assert_eq!(got[1], ("not json".to_owned(), Location::Line(2)));
        assert_eq!(got[2].1, Location::Line(4));
        assert!(
            bad.is_empty(),
            "bad lines are the record callback's to report"
        );
    }

    #[test]
    fn pretty_documents_and_arrays() {
        let (got, _) = values("{\n  \"a\": 1\n}\n{\n  \"a\": 2\n}\n");
        assert_eq!(
            got.iter().map(|g| g.1).collect::<Vec<_>>(),
            vec![Location::Line(1), Location::Line(4)]
        );
        let (got, _) = values("[\n {\"a\":1},\n {\"a\":2}\n]");
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].1, Location::Line(3));
        let (got, bad) = values("{\n \"a\": 1\n}\n{ broken");
        assert_eq!(got.len(), 1);
        assert_eq!(bad.len(), 1);
    }
}
