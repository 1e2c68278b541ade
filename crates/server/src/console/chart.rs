//! Charts as SVG written on the server: no charting script, readable in
//! print, each with a title and a description for screen readers.

use maud::{Markup, html};
use turncoat_core::Severity;

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
            viewBox={ "0 0 " (WIDTH) " " (height) } aria-labelledby="chart-title chart-desc" {
            title id="chart-title" { (title) }
            desc id="chart-desc" { (description.join("; ")) }
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
