//! CSV IOC lists as people really publish them: with or without a header,
//! any delimiter, the value column found by content, the type column used
//! as a hint, defanged values refanged, several hashes in one cell split.

use turncoat_core::{Indicator, quote};

use super::infer::{infer, is_informational_label, kind_label, refang, resolve};
use super::{Intel, feed_name};
use crate::{Location, ReadIssue};

/// Rows read before the columns are decided: enough to tell the value
/// column from the others in any real list, few enough that a list of
/// millions is never held whole.
const SAMPLE_ROWS: usize = 2000;

/// Reads a CSV IOC list.
pub fn read(name: &str, bytes: &[u8]) -> Result<Intel, ReadIssue> {
    let mut indicators = Vec::new();
    let mut intel = read_each(name, bytes, &mut |i| indicators.push(i))?;
    intel.indicators = indicators;
    Ok(intel)
}

/// Reads a CSV IOC list, handing each indicator to `each` as it is read;
/// the returned [`Intel`] holds the rest (rejections, counts). The
/// columns are decided on the first [`SAMPLE_ROWS`] rows.
pub fn read_each(
    name: &str,
    bytes: &[u8],
    each: &mut dyn FnMut(Indicator),
) -> Result<Intel, ReadIssue> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim_start_matches('\u{feff}');
    let delimiter = sniff_delimiter(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut intel = Intel::default();
    let mut records = reader.records().filter_map(|record| match record {
        Ok(r) => {
            let line = r.position().map_or(0, |p| p.line());
            let cells: Vec<String> = r.iter().map(|c| c.trim().to_owned()).collect();
            cells
                .iter()
                .any(|c| !c.is_empty())
                .then_some(Ok((line, cells)))
        }
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            Some(Err(ReadIssue::new(
                name,
                Location::Line(line),
                format!("unreadable CSV row: {e}"),
            )))
        }
    });
    let mut rows: Vec<(u64, Vec<String>)> = Vec::new();
    for record in records.by_ref() {
        match record {
            Ok(row) => rows.push(row),
            Err(issue) => intel.rejected.push(issue),
        }
        if rows.len() == SAMPLE_ROWS {
            break;
        }
    }
    if rows.is_empty() {
        return Ok(intel);
    }
    let columns = rows.iter().map(|(_, c)| c.len()).max().unwrap_or(0);
    let value_col = best_column(&rows, columns, |cell| {
        split_values(&refang(cell))
            .iter()
            .filter(|v| infer(v).is_some())
            .count()
            > 0
    })
    .ok_or_else(|| ReadIssue::new(name, Location::Unknown, "no column holds indicator values"))?;
    let type_col = best_column(&rows, columns, |cell| {
        kind_label(cell).is_some() || is_informational_label(cell)
    })
    .filter(|c| *c != value_col);
    // The description is the remaining column with the most text.
    let description_col = (0..columns)
        .filter(|c| {
            *c != value_col
                && Some(*c) != type_col
                && !is_campaign_header(rows.first().and_then(|r| r.1.get(*c)))
        })
        .max_by_key(|c| {
            rows.iter()
                .map(|(_, r)| r.get(*c).map_or(0, String::len))
                .sum::<usize>()
        });
    let header_row = is_header(&rows[0].1, value_col, type_col);
    // A named campaign column is honoured; other extra columns are not guessed at.
    let campaign_col = header_row
        .then(|| {
            rows[0].1.iter().position(|h| {
                matches!(
                    h.trim().to_ascii_lowercase().as_str(),
                    "campaign" | "malware" | "threat" | "actor" | "threat_actor"
                )
            })
        })
        .flatten();
    let columns = Columns {
        value: value_col,
        kind: type_col,
        description: description_col,
        campaign: campaign_col,
    };

    let feed = feed_name(name);
    for (line, cells) in rows.iter().skip(header_row as usize) {
        columns.row(name, &feed, *line, cells, each, &mut intel);
    }
    drop(rows);
    for record in records {
        match record {
            Ok((line, cells)) => columns.row(name, &feed, line, &cells, each, &mut intel),
            Err(issue) => intel.rejected.push(issue),
        }
    }
    Ok(intel)
}

/// Which column holds what, decided on the sample.
struct Columns {
    value: usize,
    kind: Option<usize>,
    description: Option<usize>,
    campaign: Option<usize>,
}

impl Columns {
    /// Reads one row's indicators into `each`, its problems into `intel`.
    fn row(
        &self,
        name: &str,
        feed: &str,
        line: u64,
        cells: &[String],
        each: &mut dyn FnMut(Indicator),
        intel: &mut Intel,
    ) {
        let location = Location::Line(line);
        let cell = cells.get(self.value).map(String::as_str).unwrap_or("");
        let label = self.kind.and_then(|c| cells.get(c)).map(String::as_str);
        if label.is_some_and(is_informational_label) || cell.is_empty() {
            intel.informational += 1;
            return;
        }
        let hint = label.and_then(kind_label);
        for value in split_values(&refang(cell)) {
            match resolve(hint, &value) {
                Some((kind, normalized)) => {
                    let mut ind = Indicator::new(kind, &normalized, feed)
                        .expect("resolve returns valid values");
                    ind.description = self
                        .description
                        .and_then(|c| cells.get(c))
                        .map(|d| refang(d))
                        .filter(|d| !d.is_empty());
                    ind.campaign = self
                        .campaign
                        .and_then(|c| cells.get(c))
                        .filter(|c| !c.is_empty())
                        .cloned();
                    each(ind);
                }
                None => intel.rejected.push(ReadIssue::new(
                    name,
                    location,
                    format!(
                        "{} is not a recognisable indicator{}",
                        quote(&value),
                        label.map(|l| format!(" (type {l:?})")).unwrap_or_default()
                    ),
                )),
            }
        }
    }
}

fn is_campaign_header(cell: Option<&String>) -> bool {
    cell.is_some_and(|h| {
        matches!(
            h.trim().to_ascii_lowercase().as_str(),
            "campaign" | "malware" | "threat" | "actor" | "threat_actor"
        )
    })
}

/// `,` unless another delimiter splits the first lines more consistently.
fn sniff_delimiter(text: &str) -> u8 {
    let sample: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .take(20)
        .collect();
    [b',', b'\t', b';', b'|']
        .into_iter()
        .max_by_key(|d| {
            let counts: Vec<usize> = sample
                .iter()
                .map(|l| l.bytes().filter(|b| b == d).count())
                .collect();
            let consistent = counts.windows(2).all(|w| w[0] == w[1]);
            (
                counts.iter().all(|c| *c > 0) as usize,
                consistent as usize,
                counts.first().copied().unwrap_or(0),
            )
        })
        .unwrap_or(b',')
}

/// The column where `test` holds for the most rows.
fn best_column(
    rows: &[(u64, Vec<String>)],
    columns: usize,
    test: impl Fn(&str) -> bool,
) -> Option<usize> {
    (0..columns)
        .map(|c| {
            (
                c,
                rows.iter()
                    .filter(|(_, r)| r.get(c).is_some_and(|v| test(v)))
                    .count(),
            )
        })
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(c, n)| (*n, std::cmp::Reverse(*c)))
        .map(|(c, _)| c)
}

/// A header row has no indicator in the value column and no type label in
/// the type column.
fn is_header(row: &[String], value_col: usize, type_col: Option<usize>) -> bool {
    let value = row.get(value_col).map(|v| refang(v)).unwrap_or_default();
    let no_value = split_values(&value).iter().all(|v| infer(v).is_none());
    let no_type = type_col.is_none_or(|c| {
        row.get(c)
            .is_none_or(|t| kind_label(t).is_none() && !is_informational_label(t))
    });
    no_value && no_type
}

/// Cells sometimes hold several values (`sha256,sha1,md5` in one quoted
/// cell): split on separators when every part is itself a value.
fn split_values(cell: &str) -> Vec<String> {
    let parts: Vec<&str> = cell
        .split([',', ';', '|', ' '])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() > 1 && parts.iter().all(|p| infer(p).is_some()) {
        parts.into_iter().map(str::to_owned).collect()
    } else {
        vec![cell.to_owned()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turncoat_core::IndicatorKind;

    #[test]
    fn sophos_style_type_then_value() {
        let text = "\u{feff}Indicator,Data,Note\r\nDescription,https://news.example/report \u{200e},About\r\n\
SHA256,aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868,WIN: MSI\r\n\
URL,raw.githubusercontent.com/IconStorages/images/main/,Staging\r\n\
URL,akamaicontainer[.]com,C2 (malware/callhome)\r\n";
        let intel = read("sophos.csv", text.as_bytes()).unwrap();
        assert!(intel.rejected.is_empty(), "{:?}", intel.rejected);
        assert_eq!(intel.informational, 1);
        let kinds: Vec<_> = intel
            .indicators
            .iter()
            .map(|i| (i.kind, i.value.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    IndicatorKind::Sha256,
                    "aa124a4b4df12b34e74ee7f6c683b2ebec4ce9a8edcf9be345823b4fdcf5d868"
                ),
                (
                    IndicatorKind::UrlPrefix,
                    "raw.githubusercontent.com/IconStorages/images/main/"
                ),
                (IndicatorKind::Domain, "akamaicontainer.com"),
            ]
        );
        assert_eq!(
            intel.indicators[2].description.as_deref(),
            Some("C2 (malware/callhome)")
        );
    }

    #[test]
    fn volexity_style_value_first_with_joined_hashes() {
        let text = "value,entity_type,description\nwww.azuredeploystore.com,hostname,x\nphilip.je@proton.me,emailwhois,x\n\
\"59e1edf4d82fae4978e97512b0331b7eb21dd4b838b850ba46794d9c7a2c0983,bfecb8ce89a312d2ef4afc64a63847ae11c6f69e,0eeb1c0133eb4d571178b2d9d14ce3e9\",file,MSI\n";
        let intel = read("v.csv", text.as_bytes()).unwrap();
        assert!(intel.rejected.is_empty(), "{:?}", intel.rejected);
        let kinds: Vec<_> = intel.indicators.iter().map(|i| i.kind).collect();
        use IndicatorKind::*;
        assert_eq!(kinds, vec![Domain, Email, Sha256, Sha1, Md5]);
    }

    #[test]
    fn headerless_single_column_and_bad_values() {
        let text = "evil[.]com\nhxxp://bad-site[.]net/x.exe\nnot an ioc at all\n1.2.3.4\n";
        let intel = read("plain.txt", text.as_bytes()).unwrap();
        assert_eq!(intel.indicators.len(), 3);
        assert_eq!(intel.rejected.len(), 1);
        assert_eq!(intel.rejected[0].location, Location::Line(3));
    }

    #[test]
    fn a_campaign_column_names_the_campaign() {
        let text =
            "type,value,campaign,description\ndomain,akamaicontainer.com,SmoothOperator,C2\n";
        let intel = read("pack.csv", text.as_bytes()).unwrap();
        assert_eq!(
            intel.indicators[0].campaign.as_deref(),
            Some("SmoothOperator")
        );
        assert_eq!(intel.indicators[0].description.as_deref(), Some("C2"));
    }

    #[test]
    fn file_names_are_not_domains() {
        let text = "File,Creation,Domain\nREADME.md,2022-12-07,\nicon0.ico,2022-12-07,www.3cx[.]com\nicon1.ico,2022-12-07,msstorageazure[.]com\n";
        let intel = read("gh.csv", text.as_bytes()).unwrap();
        let values: Vec<_> = intel.indicators.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, vec!["www.3cx.com", "msstorageazure.com"]);
    }
}
