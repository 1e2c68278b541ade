//! Charts as SVG written on the server: no charting script, readable in
//! print, each with a title and a description for screen readers.

use maud::{Markup, html};
use turncoat_core::{Severity, Time};

/// One bar: a label and its counts per severity, highest first.
pub(super) struct StackedBar {
    pub label: String,
    pub counts: Vec<(Severity, u64)>,
}

/// A piece of a bar: its severity, count, x and width.
type Segment = (Severity, u64, f64, f64);

const WIDTH: f64 = 640.0;
const LABEL_WIDTH: f64 = 150.0;
const ROW_HEIGHT: f64 = 26.0;
const BAR_HEIGHT: f64 = 18.0;

/// Horizontal bars, one per row, split by severity; `title` names the
/// chart for assistive technology and as a tooltip.
pub(super) fn stacked_bars(title: &str, rows: &[StackedBar]) -> Markup {
    let total = |r: &StackedBar| r.counts.iter().map(|(_, n)| n).sum::<u64>();
    let max = rows.iter().map(total).max().unwrap_or(0).max(1) as f64;
    let scale = (WIDTH - LABEL_WIDTH - 60.0) / max;
    let height = ROW_HEIGHT * rows.len().max(1) as f64 + 8.0;
    let description: Vec<String> = rows
        .iter()
        .map(|r| {
            let parts: Vec<String> = r
                .counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|(s, n)| format!("{n} {s}"))
                .collect();
            format!(
                "{}: {}",
                r.label,
                if parts.is_empty() {
                    "none".into()
                } else {
                    parts.join(", ")
                }
            )
        })
        .collect();
    // Each row's segments, laid out left to right, and where it ends.
    let laid_out: Vec<(Vec<Segment>, f64)> = rows
        .iter()
        .map(|row| {
            let mut x = LABEL_WIDTH;
            let segments = row
                .counts
                .iter()
                .filter(|(_, n)| *n > 0)
                .map(|&(severity, n)| {
                    let w = (n as f64 * scale).max(1.0);
                    let segment = (severity, n, x, w);
                    x += w;
                    segment
                })
                .collect();
            (segments, x)
        })
        .collect();
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (height) } {
            title { (title) }
            desc { (description.join("; ")) }
            @for (i, (row, (segments, end))) in rows.iter().zip(&laid_out).enumerate() {
                @let y = 4.0 + i as f64 * ROW_HEIGHT;
                text x="0" y=(y + BAR_HEIGHT - 4.0) { (row.label) }
                @for (severity, n, x, w) in segments {
                    rect class={ "bar-" (severity) } x=(x) y=(y) width=(w) height=(BAR_HEIGHT) {
                        title { (row.label) ": " (n) " " (severity) }
                    }
                }
                text x=(end + 6.0) y=(y + BAR_HEIGHT - 4.0) { (total(row)) }
            }
        }
    }
}

/// Scores from 0 to 1 as bars on a common scale, each labelled with its
/// value: a beacon's sub-scores side by side.
pub(super) fn score_bars(title: &str, scores: &[(&str, f64)]) -> Markup {
    const W: f64 = 260.0;
    const LABEL: f64 = 70.0;
    const ROW: f64 = 16.0;
    let height = ROW * scores.len() as f64 + 4.0;
    let description: Vec<String> = scores
        .iter()
        .map(|(label, v)| format!("{label} {v:.2}"))
        .collect();
    html! {
        svg.chart.scores xmlns="http://www.w3.org/2000/svg" role="img" width=(W) height=(height)
            viewBox={ "0 0 " (W) " " (height) } {
            title { (title) ": " (description.join(", ")) }
            @for (i, (label, value)) in scores.iter().enumerate() {
                @let y = 2.0 + i as f64 * ROW;
                @let w = (value.clamp(0.0, 1.0) * (W - LABEL - 40.0)).max(1.0);
                text x="0" y=(y + 11.0) { (label) }
                rect.bar-medium x=(LABEL) y=(y + 2.0) width=(w) height=(ROW - 5.0) {}
                text x=(LABEL + w + 4.0) y=(y + 11.0) { (format!("{value:.2}")) }
            }
        }
    }
}

/// One row of a timeline: a label and its intervals.
pub(super) struct TimelineRow {
    pub label: String,
    pub spans: Vec<Span>,
}

/// An interval on a timeline; `to: None` runs to the chart's end (still
/// open). `series` picks its colour and its legend entry.
pub(super) struct Span {
    pub from: Time,
    pub to: Option<Time>,
    pub series: usize,
    pub note: String,
}

/// Colours for series, cycled.
const SERIES: usize = 6;

/// Where a time falls on an axis from `start` to `end` drawn `width` wide
/// from `left`.
fn x_of(t: Time, start: Time, end: Time, left: f64, width: f64) -> f64 {
    let span = (end.0 - start.0).max(1) as f64;
    left + (t.0 - start.0).clamp(0, end.0 - start.0) as f64 / span * width
}

/// A time axis's labels: dates when the span is over two days, else
/// dates with hours and minutes.
fn axis(start: Time, end: Time, left: f64, width: f64, y: f64) -> Markup {
    // A label every 140 px or so: dates do not run into each other.
    let ticks = ((width / 140.0) as i64).max(1);
    let long = end.0 - start.0 > 2 * 86_400_000_000;
    html! {
        line.axis x1=(left) y1=(y) x2=(left + width) y2=(y) {}
        @for i in 0..=ticks {
            @let t = Time(start.0 + (end.0 - start.0) / ticks * i);
            @let x = x_of(t, start, end, left, width);
            @let text = if long { t.date_string() } else { t.to_rfc3339().get(..16).unwrap_or_default().replace('T', " ") };
            line.axis x1=(x) y1=(y) x2=(x) y2=(y + 4.0) {}
            text x=(x) y=(y + 16.0) text-anchor=(if i == 0 { "start" } else if i == ticks { "end" } else { "middle" }) { (text) }
        }
    }
}

/// Intervals on a shared time axis, one row each (who ran which version
/// from when to when), with a legend of the series. The axis ends a
/// little after the last date known; intervals still open run to its end.
pub(super) fn timeline(title: &str, rows: &[TimelineRow], series: &[String]) -> Markup {
    const LABEL: f64 = 190.0;
    const PLOT: f64 = WIDTH - LABEL - 10.0;
    let dates = || {
        rows.iter()
            .flat_map(|r| r.spans.iter())
            .flat_map(|s| [Some(s.from), s.to])
            .flatten()
    };
    let start = dates().min().unwrap_or(Time(0));
    let last = dates().max().unwrap_or(start);
    let end = Time(last.0 + ((last.0 - start.0) / 10).max(3_600_000_000));
    let legend_y = ROW_HEIGHT * rows.len() as f64 + 36.0;
    let lines = legend(series, LABEL, WIDTH).last().map_or(0, |l| l.2) + 1;
    let height = legend_y + 16.0 * lines as f64 + 4.0;
    let description: Vec<String> = rows
        .iter()
        .map(|r| {
            let spans: Vec<&str> = r.spans.iter().map(|s| s.note.as_str()).collect();
            format!("{}: {}", r.label, spans.join(", "))
        })
        .collect();
    html! {
        svg.chart.timeline xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (height) } {
            title { (title) }
            desc { (description.join("; ")) }
            @for (i, row) in rows.iter().enumerate() {
                @let y = 4.0 + i as f64 * ROW_HEIGHT;
                text x="0" y=(y + BAR_HEIGHT - 4.0) { (row.label) }
                @for s in &row.spans {
                    @let x = x_of(s.from, start, end, LABEL, PLOT);
                    @let w = (x_of(s.to.unwrap_or(end), start, end, LABEL, PLOT) - x).max(2.0);
                    rect class={ "series-" (s.series % SERIES) } x=(x) y=(y) width=(w) height=(BAR_HEIGHT) {
                        title { (row.label) ": " (s.note) }
                    }
                }
            }
            (axis(start, end, LABEL, PLOT, ROW_HEIGHT * rows.len() as f64 + 6.0))
            @for (i, (name, x, line)) in legend(series, LABEL, WIDTH).into_iter().enumerate() {
                @let y = legend_y + line as f64 * 16.0;
                rect class={ "series-" (i % SERIES) } x=(x) y=(y - 9.0) width="10" height="10" {}
                text x=(x + 14.0) y=(y) { (name) }
            }
        }
    }
}

/// Where each legend entry goes: its name, x and line, entries laid left
/// to right by their length (about 7 px a character at 12 px), wrapping.
fn legend(series: &[String], left: f64, width: f64) -> Vec<(&str, f64, usize)> {
    let (mut x, mut line) = (left, 0);
    series
        .iter()
        .map(|name| {
            let w = 24.0 + 7.0 * name.chars().count() as f64;
            if x + w > width && x > left {
                (x, line) = (left, line + 1);
            }
            let placed = (name.as_str(), x, line);
            x += w;
            placed
        })
        .collect()
}

/// Counts per bin as vertical bars, each bin labelled below (a beacon's
/// inter-arrival histogram).
pub(super) fn histogram(title: &str, bins: &[(String, u64)]) -> Markup {
    const HEIGHT: f64 = 190.0;
    const PLOT: f64 = 140.0;
    // Room above the tallest bar for its count.
    const TOP: f64 = 18.0;
    let max = bins.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1) as f64;
    let step = WIDTH / bins.len().max(1) as f64;
    let description: Vec<String> = bins.iter().map(|(l, n)| format!("{l}: {n}")).collect();
    html! {
        svg.chart.histogram xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } {
            title { (title) }
            desc { (description.join("; ")) }
            @for (i, (label, n)) in bins.iter().enumerate() {
                @let h = *n as f64 / max * PLOT;
                @let x = i as f64 * step;
                rect.bar-medium x=(x + 2.0) y=(TOP + PLOT - h) width=((step - 4.0).max(1.0)) height=(h) {
                    title { (label) ": " (n) }
                }
                @if *n > 0 {
                    text x=(x + step / 2.0) y=(TOP + PLOT - h - 4.0) text-anchor="middle" { (n) }
                }
                text x=(x + step / 2.0) y=(TOP + PLOT + 16.0) text-anchor="middle" { (label) }
            }
        }
    }
}

/// Each moment as a tick on a time axis from `start` to `end` (a pair's
/// connections), with how many there were.
pub(super) fn strip(title: &str, times: &[Time], start: Time, end: Time) -> Markup {
    const HEIGHT: f64 = 70.0;
    let end = end.max(Time(start.0 + 1));
    html! {
        svg.chart.strip xmlns="http://www.w3.org/2000/svg" role="img"
            viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } {
            title { (title) }
            desc { (times.len()) " connections from " (start) " to " (end) }
            @for t in times {
                @let x = x_of(*t, start, end, 10.0, WIDTH - 20.0);
                line.tick x1=(x) y1="8" x2=(x) y2="38" {}
            }
            (axis(start, end, 10.0, WIDTH - 20.0, 42.0))
        }
    }
}
