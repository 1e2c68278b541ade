//! The incident report for one tenant: what happened (a timeline), who
//! ran an affected version and when, contacts with the attacker's
//! infrastructure (those from before the intel existed apart), beacons,
//! what is blocked, the open actions and the analysts' decisions with
//! their reasons. One self-contained HTML page (the stylesheet inline,
//! SVG charts, no script), for the customer; `turncoat report` writes it
//! too.

use std::collections::BTreeMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use turncoat_core::{AlertKind, AlertStatus, Time};
use turncoat_store::{Alert, AlertAction, AlertFilter, Scope, Store, Tenant};

use super::chart::{strip, timeline};
use super::exposure::{read as exposure_of, timeline_rows, versions};

/// Rows listed per section at most.
const LISTED: usize = 500;

/// What a report covers.
pub struct ReportQuery {
    pub tenant: Tenant,
    /// One advisory's exposure only.
    pub advisory: Option<String>,
    /// Alerts last seen from this time on.
    pub since: Option<Time>,
}

/// What a report shows, read once for either rendering.
struct Gathered {
    name: String,
    /// In the order first seen.
    alerts: Vec<Alert>,
    exposure: Vec<super::exposure::AdvisoryExposure>,
    blocked: turncoat_respond::Blocklist,
    /// Status changes and resurfacings: the alert's index, the change.
    decisions: Vec<(usize, turncoat_store::AlertChange)>,
}

fn gather(store: &dyn Store, query: &ReportQuery, now: Time) -> Result<Gathered, crate::Problem> {
    let scope = Scope::tenant(&query.tenant);
    let mut alerts: Vec<Alert> = store
        .alerts(&scope, &AlertFilter::default())?
        .into_iter()
        .filter(|a| query.since.is_none_or(|s| a.last_seen >= s))
        .collect();
    alerts.sort_by_key(|a| (a.first_seen, a.id));
    let exposure = exposure_of(store, &scope, query.advisory.as_deref())?;
    let selection = turncoat_engine::export::Selection {
        tenant: Some(&query.tenant),
        seen: true,
        ..Default::default()
    };
    let blocked = turncoat_engine::export::blocklist(store, &selection, now)?;
    let mut decisions = Vec::new();
    for (i, a) in alerts.iter().enumerate().take(LISTED) {
        for change in store.alert_history(&scope, a.id)? {
            if matches!(change.action, AlertAction::Status | AlertAction::Resurfaced) {
                decisions.push((i, change));
            }
        }
    }
    decisions.sort_by_key(|(_, c)| c.time);
    Ok(Gathered {
        name: query.tenant.name().to_string(),
        alerts,
        exposure,
        blocked,
        decisions,
    })
}

/// The report as HTML.
pub fn report_html(
    store: &dyn Store,
    query: &ReportQuery,
    now: Time,
) -> Result<String, crate::Problem> {
    let Gathered {
        name,
        alerts,
        exposure,
        blocked,
        decisions,
    } = gather(store, query, now)?;
    let decisions: Vec<(&Alert, turncoat_store::AlertChange)> = decisions
        .into_iter()
        .map(|(i, c)| (&alerts[i], c))
        .collect();
    let css = super::Assets::get("console.css")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    let by_kind = |kind: AlertKind| alerts.iter().filter(move |a| a.kind == kind);
    let (before, after): (Vec<&Alert>, Vec<&Alert>) =
        by_kind(AlertKind::Ioc).partition(|a| a.evidence.before_valid_from);
    let open: Vec<&Alert> = alerts.iter().filter(|a| a.status.is_open()).collect();
    let mut counts: BTreeMap<(AlertKind, bool), usize> = BTreeMap::new();
    for a in &alerts {
        *counts.entry((a.kind, a.status.is_open())).or_default() += 1;
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Incident report: " (name) }
                style { (PreEscaped(css)) }
            }
            body { main {
                h1 { "Incident report: " (name) }
                p.muted {
                    "Generated " (now)
                    @if let Some(s) = query.since { ", alerts last seen since " (s) }
                    @if let Some(a) = &query.advisory { ", advisory " (a) }
                    "."
                }
                section.panel {
                    h2 { "Summary" }
                    div.table-wrap { table {
                        thead { tr { th { "Kind" } th.num { "Open" } th.num { "Closed" } } }
                        tbody {
                            @for kind in AlertKind::ALL {
                                @let (o, c) = (counts.get(&(kind, true)).copied().unwrap_or(0), counts.get(&(kind, false)).copied().unwrap_or(0));
                                @if o + c > 0 { tr { td { (kind) } td.num { (o) } td.num { (c) } } }
                            }
                        }
                    } }
                }
                section.panel {
                    h2 { "What happened" }
                    @if let (Some(first), Some(last)) = (alerts.first(), alerts.iter().map(|a| a.first_seen).max()) {
                        (strip(&format!("When {name}'s alerts were first seen"),
                            &alerts.iter().map(|a| a.first_seen).collect::<Vec<_>>(), first.first_seen, last))
                    }
                    (alert_table(&alerts))
                }
                section.panel {
                    h2 { "Exposure" }
                    @for a in &exposure {
                        h2 { code { (a.id) } " " (a.title) }
                        @if a.rows.is_empty() {
                            p.muted { "No endpoint ran an affected version." }
                        } @else {
                            (timeline(&format!("Who ran an affected version of {}, and when", a.id), &timeline_rows(a, |r| r.endpoint.clone()), &versions(a)))
                            div.table-wrap { table {
                                thead { tr { th { "Endpoint" } th { "Version" } th { "From" } th { "To" } } }
                                tbody { @for r in &a.rows { tr {
                                    td { (r.endpoint) } td { (r.product) " " (r.version) } td { (r.from) }
                                    td { @match r.to { Some(t) => (t), None => "still installed" } }
                                } } }
                            } }
                        }
                    }
                }
                section.panel {
                    h2 { "Contacts with the attacker's infrastructure" }
                    h2 { "Before the intel existed (found by the retro-hunt)" }
                    (alert_table(&before))
                    h2 { "After" }
                    (alert_table(&after))
                }
                section.panel {
                    h2 { "Beacons" }
                    (alert_table(&by_kind(AlertKind::Beacon).collect::<Vec<_>>()))
                }
                section.panel {
                    h2 { "Blocked" }
                    p { (blocked.entries.len()) " indicators seen in " (name) "'s telemetry are on its blocklist (RPZ, Suricata, STIX exports and TAXII), zone serial " (blocked.serial) "." }
                    @if !blocked.entries.is_empty() {
                        div.table-wrap { table {
                            thead { tr { th { "Kind" } th { "Value" } th { "On the list since" } th { "Named by" } } }
                            tbody { @for e in blocked.entries.iter().take(LISTED) { tr {
                                td { (e.kind) } td { code { (e.value) } } td { (e.added) } td { (e.sources.join(", ")) }
                            } } }
                        } }
                    }
                }
                section.panel {
                    h2 { "Open actions" }
                    (alert_table(&open))
                }
                section.panel {
                    h2 { "Decisions" }
                    @if decisions.is_empty() {
                        p.muted { "No alert has been triaged yet." }
                    } @else {
                        div.table-wrap { table {
                            thead { tr { th { "When" } th { "Who" } th { "Alert" } th { "Decision" } th { "Why" } } }
                            tbody { @for (a, c) in &decisions { tr {
                                td { (c.time) } td { (c.actor) } td { (a.title) }
                                td { (c.action.as_str()) @if let Some(v) = &c.value { ": " (v) } }
                                td { (c.note.as_deref().unwrap_or("")) }
                            } } }
                        } }
                    }
                }
            } }
        }
    };
    Ok(page.into_string())
}

fn alert_table<A: std::borrow::Borrow<Alert>>(alerts: &[A]) -> Markup {
    html! {
        @if alerts.is_empty() {
            p.muted { "None." }
        } @else {
            div.table-wrap { table {
                thead { tr { th { "First seen" } th { "Severity" } th { "Endpoint" } th { "What" } th { "Status" } } }
                tbody {
                    @for a in alerts.iter().take(LISTED).map(|a| a.borrow()) {
                        tr {
                            td { (a.first_seen) }
                            td { span class={ "sev sev-" (a.severity) } { (a.severity) } }
                            td { (a.endpoint) } td { (a.title) }
                            td { (a.status) @if a.status == AlertStatus::FalsePositive { span.muted { " (dismissed)" } } }
                        }
                    }
                }
            } }
            @if alerts.len() > LISTED { p.muted { "The first " (LISTED) " of " (alerts.len()) "." } }
        }
    }
}

#[derive(serde::Deserialize)]
pub(super) struct ReportParams {
    tenant: String,
    advisory: Option<String>,
    since: Option<String>,
    /// `html` (the default) or `pdf`.
    format: Option<String>,
}

/// `/report?tenant=`: the report of one of the viewer's tenants.
pub(super) async fn report(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    viewer: super::Viewer,
    axum::extract::Query(params): axum::extract::Query<ReportParams>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let Some(tenant) = viewer.scope().get(&params.tenant).cloned() else {
        return super::not_found(&viewer, "tenant");
    };
    let since =
        match crate::api::time_param("since", params.since.as_deref().filter(|s| !s.is_empty())) {
            Ok(s) => s,
            Err(p) => return super::failed(&viewer, p),
        };
    let query = ReportQuery {
        tenant,
        advisory: params.advisory.filter(|a| !a.is_empty()),
        since,
    };
    let pdf = params.format.as_deref() == Some("pdf");
    let made = state
        .read(move |store| {
            if pdf {
                report_pdf(store, &query, Time::now()).map(Err)
            } else {
                report_html(store, &query, Time::now()).map(Ok)
            }
        })
        .await;
    match made {
        Ok(Ok(page)) => axum::response::Html(page).into_response(),
        Ok(Err(pdf)) => {
            ([(axum::http::header::CONTENT_TYPE, "application/pdf")], pdf).into_response()
        }
        Err(p) => super::failed(&viewer, p),
    }
}

/// The report as PDF (A4): the same sections as the HTML, as text and
/// tables in the standard PDF fonts (Helvetica, Courier for tables), so
/// any reader shows it and its text can be searched and copied.
pub fn report_pdf(
    store: &dyn Store,
    query: &ReportQuery,
    now: Time,
) -> Result<Vec<u8>, crate::Problem> {
    let g = gather(store, query, now)?;
    let mut doc = pdf::Document::default();
    doc.title(&format!("Incident report: {}", g.name));
    doc.text(&format!("Generated {now}."));
    let row = |a: &Alert| {
        vec![
            a.first_seen.to_string(),
            a.severity.to_string(),
            a.endpoint.clone(),
            a.title.clone(),
            a.status.to_string(),
        ]
    };
    let alert_header = ["First seen", "Severity", "Endpoint", "What", "Status"];
    let alerts_of = |keep: &dyn Fn(&Alert) -> bool| -> Vec<Vec<String>> {
        g.alerts
            .iter()
            .filter(|a| keep(a))
            .take(LISTED)
            .map(row)
            .collect()
    };
    doc.heading("Summary");
    let mut counts: BTreeMap<AlertKind, (usize, usize)> = BTreeMap::new();
    for a in &g.alerts {
        let c = counts.entry(a.kind).or_default();
        if a.status.is_open() {
            c.0 += 1;
        } else {
            c.1 += 1;
        }
    }
    doc.table(
        &["Kind", "Open", "Closed"],
        &counts
            .iter()
            .map(|(k, (o, c))| vec![k.to_string(), o.to_string(), c.to_string()])
            .collect::<Vec<_>>(),
    );
    doc.heading("What happened");
    doc.table(&alert_header, &alerts_of(&|_| true));
    doc.heading("Exposure");
    for a in &g.exposure {
        doc.text(&format!("{} {}", a.id, a.title));
        let rows: Vec<Vec<String>> = a
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.endpoint.clone(),
                    format!("{} {}", r.product, r.version),
                    r.from.to_string(),
                    r.to.map_or("still installed".into(), |t| t.to_string()),
                ]
            })
            .collect();
        doc.table(&["Endpoint", "Version", "From", "To"], &rows);
    }
    doc.heading("Contacts with the attacker's infrastructure");
    doc.text("Before the intel existed (found by the retro-hunt):");
    doc.table(
        &alert_header,
        &alerts_of(&|a| a.kind == AlertKind::Ioc && a.evidence.before_valid_from),
    );
    doc.text("After:");
    doc.table(
        &alert_header,
        &alerts_of(&|a| a.kind == AlertKind::Ioc && !a.evidence.before_valid_from),
    );
    doc.heading("Beacons");
    doc.table(&alert_header, &alerts_of(&|a| a.kind == AlertKind::Beacon));
    doc.heading("Blocked");
    doc.text(&format!(
        "{} indicators seen in {}'s telemetry are on its blocklist, zone serial {}.",
        g.blocked.entries.len(),
        g.name,
        g.blocked.serial
    ));
    doc.table(
        &["Kind", "Value", "On the list since"],
        &g.blocked
            .entries
            .iter()
            .take(LISTED)
            .map(|e| vec![e.kind.to_string(), e.value.clone(), e.added.to_string()])
            .collect::<Vec<_>>(),
    );
    doc.heading("Open actions");
    doc.table(&alert_header, &alerts_of(&|a| a.status.is_open()));
    doc.heading("Decisions");
    doc.table(
        &["When", "Who", "Alert", "Decision", "Why"],
        &g.decisions
            .iter()
            .map(|(i, c)| {
                vec![
                    c.time.to_string(),
                    c.actor.clone(),
                    g.alerts[*i].title.clone(),
                    format!(
                        "{}{}",
                        c.action.as_str(),
                        c.value
                            .as_deref()
                            .map(|v| format!(": {v}"))
                            .unwrap_or_default()
                    ),
                    c.note.clone().unwrap_or_default(),
                ]
            })
            .collect::<Vec<_>>(),
    );
    Ok(doc.finish())
}

/// A text-only PDF laid out line by line on A4 pages.
mod pdf {
    use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

    const WIDTH: f32 = 595.0;
    const HEIGHT: f32 = 842.0;
    const MARGIN: f32 = 50.0;
    /// Courier's advance is 0.6 em: a table line's characters.
    const TABLE_SIZE: f32 = 7.5;
    const TABLE_CHARS: usize = ((WIDTH - 2.0 * MARGIN) / (TABLE_SIZE * 0.6)) as usize;
    /// Helvetica averages about half an em: a text line's characters.
    const TEXT_SIZE: f32 = 9.5;
    const TEXT_CHARS: usize = 95;

    /// Fonts by their resource name.
    const FONTS: [(&[u8], &[u8]); 3] = [
        (b"F1", b"Helvetica"),
        (b"F2", b"Helvetica-Bold"),
        (b"F3", b"Courier"),
    ];

    /// One line placed on a page.
    struct Placed {
        /// Index into [`FONTS`].
        font: usize,
        size: f32,
        x: f32,
        y: f32,
        text: String,
    }

    #[derive(Default)]
    pub(super) struct Document {
        pages: Vec<Vec<Placed>>,
        y: f32,
    }

    impl Document {
        fn line(&mut self, font: usize, size: f32, text: &str) {
            let step = size * 1.35;
            if self.pages.is_empty() || self.y - step < MARGIN {
                self.pages.push(Vec::new());
                self.y = HEIGHT - MARGIN;
            }
            self.y -= step;
            let y = self.y;
            if let Some(page) = self.pages.last_mut() {
                page.push(Placed {
                    font,
                    size,
                    x: MARGIN,
                    y,
                    text: text.to_owned(),
                });
            }
        }

        pub(super) fn title(&mut self, text: &str) {
            self.line(1, 16.0, text);
            self.y -= 6.0;
        }

        pub(super) fn heading(&mut self, text: &str) {
            self.y -= 8.0;
            self.line(1, 12.0, text);
        }

        /// Text, wrapped at word boundaries.
        pub(super) fn text(&mut self, text: &str) {
            let mut line = String::new();
            for word in text.split_whitespace() {
                if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > TEXT_CHARS
                {
                    self.line(0, TEXT_SIZE, &std::mem::take(&mut line));
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            if !line.is_empty() {
                self.line(0, TEXT_SIZE, &line);
            }
        }

        /// Columns as wide as their widest cell (at most 40 characters),
        /// narrowed to fit the page; a longer cell wraps onto more lines.
        pub(super) fn table(&mut self, header: &[&str], rows: &[Vec<String>]) {
            if rows.is_empty() {
                self.text("None.");
                return;
            }
            let n = header.len();
            let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
            for r in rows {
                for (i, c) in r.iter().enumerate().take(n) {
                    widths[i] = widths[i].max(c.chars().count().min(40));
                }
            }
            // Too wide for the page: the widest column gives way first, so
            // short ones (a time, a status) stay whole.
            while widths.iter().map(|w| w + 2).sum::<usize>() > TABLE_CHARS + 2 {
                let Some(widest) = (0..n).max_by_key(|i| widths[*i]) else {
                    break;
                };
                if widths[widest] <= 8 {
                    break;
                }
                widths[widest] -= 1;
            }
            let mut emit = |cells: Vec<String>| {
                let mut columns: Vec<Vec<String>> = cells
                    .iter()
                    .zip(&widths)
                    .map(|(c, w)| wrap(c, *w))
                    .collect();
                let height = columns.iter().map(Vec::len).max().unwrap_or(1);
                for line in 0..height {
                    let mut text = String::new();
                    for (i, col) in columns.iter_mut().enumerate() {
                        let cell = col.get(line).cloned().unwrap_or_default();
                        text.push_str(&cell);
                        if i + 1 < n {
                            text.push_str(&" ".repeat(widths[i] + 2 - cell.chars().count()));
                        }
                    }
                    self.line(2, TABLE_SIZE, text.trim_end());
                }
            };
            emit(header.iter().map(|h| (*h).to_owned()).collect());
            for r in rows {
                emit(r.clone());
            }
        }

        pub(super) fn finish(self) -> Vec<u8> {
            let mut pdf = Pdf::new();
            let catalog = Ref::new(1);
            let tree = Ref::new(2);
            let font_ids: Vec<Ref> = (0..FONTS.len()).map(|i| Ref::new(3 + i as i32)).collect();
            let first = 3 + FONTS.len() as i32;
            let page_ids: Vec<Ref> = (0..self.pages.len())
                .map(|i| Ref::new(first + 2 * i as i32))
                .collect();
            pdf.catalog(catalog).pages(tree);
            pdf.pages(tree)
                .kids(page_ids.iter().copied())
                .count(page_ids.len() as i32);
            for ((_, base), id) in FONTS.iter().zip(&font_ids) {
                pdf.type1_font(*id)
                    .base_font(Name(base))
                    .encoding_predefined(Name(b"WinAnsiEncoding"));
            }
            for (lines, page_id) in self.pages.iter().zip(&page_ids) {
                let content_id = Ref::new(page_id.get() + 1);
                let mut page = pdf.page(*page_id);
                page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT));
                page.parent(tree);
                page.contents(content_id);
                let mut resources = page.resources();
                let mut fonts = resources.fonts();
                for ((name, _), id) in FONTS.iter().zip(&font_ids) {
                    fonts.pair(Name(name), *id);
                }
                fonts.finish();
                resources.finish();
                page.finish();
                let mut content = Content::new();
                for l in lines {
                    content.begin_text();
                    content.set_font(Name(FONTS[l.font].0), l.size);
                    content.next_line(l.x, l.y);
                    content.show(Str(&win_ansi(&l.text)));
                    content.end_text();
                }
                pdf.stream(content_id, &content.finish());
            }
            pdf.finish()
        }
    }

    /// `text` cut into lines of at most `width` characters, at spaces
    /// where it can.
    fn wrap(text: &str, width: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split_whitespace() {
            let mut word = word.to_owned();
            while word.chars().count() > width {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let head: String = word.chars().take(width).collect();
                word = word.chars().skip(width).collect();
                lines.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        if !line.is_empty() || lines.is_empty() {
            lines.push(line);
        }
        lines
    }

    /// Text in the standard fonts' encoding: Latin-1 as is, anything
    /// else `?`.
    fn win_ansi(text: &str) -> Vec<u8> {
        text.chars()
            .map(|c| match c as u32 {
                0x20..=0x7e | 0xa0..=0xff => c as u32 as u8,
                _ => b'?',
            })
            .collect()
    }
}
