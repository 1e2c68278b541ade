//! `/intel`: what intel is stored, and (admins) importing a file by
//! upload, answered with the import's retro-hunt report: which tenants
//! already contacted what the new intel names, and which dismissed
//! alerts it brought back.

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use turncoat_engine::intel::IntelReport;

use super::{Menu, Viewer, failed, page, retro_table};
use crate::{AppState, Problem};

/// The largest intel file taken by upload.
const MAX_INTEL_BYTES: usize = 512 << 20;

pub(super) async fn intel(State(state): State<AppState>, viewer: Viewer) -> Response {
    match summary(&state).await {
        Ok((indicators, advisories)) => {
            render(&viewer, indicators, &advisories, None).into_response()
        }
        Err(p) => failed(&viewer, p),
    }
}

async fn summary(state: &AppState) -> Result<(u64, Vec<(String, String)>), Problem> {
    state
        .read(|store| {
            let advisories = store
                .advisories()?
                .into_iter()
                .map(|a| (a.id, a.title))
                .collect();
            Ok((store.count_indicators()?, advisories))
        })
        .await
}

/// `POST /intel`: a multipart form with `csrf` and `file`.
pub(super) async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    match take_upload(&state, &viewer, multipart).await {
        Ok(Ok(report)) => match summary(&state).await {
            Ok((indicators, advisories)) => {
                render(&viewer, indicators, &advisories, Some(&report)).into_response()
            }
            Err(p) => failed(&viewer, p),
        },
        Ok(Err(refused)) => refused,
        Err(p) => failed(&viewer, p),
    }
}

/// The upload imported, or the refusal of a form without the session's
/// token.
async fn take_upload(
    state: &AppState,
    viewer: &Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Result<IntelReport, Response>, Problem> {
    if !viewer.is_admin() {
        return Err(Problem::new(
            axum::http::StatusCode::FORBIDDEN,
            "only an admin imports intel",
        ));
    }
    let upload = match super::upload::take(viewer, multipart, &["file"], MAX_INTEL_BYTES).await? {
        Ok(upload) => upload,
        Err(refused) => return Ok(Err(refused)),
    };
    let actor = viewer.0.principal.actor.clone();
    let hand_off = state.hand_off();
    let (mut report, upload) = upload
        .import(state, "choose a file to import", move |store, file, _| {
            crate::handoff::import_intel(
                hand_off.as_ref(),
                store,
                &[file],
                None,
                &turncoat_engine::NoProgress,
                &actor,
            )
        })
        .await?;
    for f in &mut report.files {
        f.file = upload.scrub(&f.file);
        f.error = f.error.as_deref().map(|e| upload.scrub(e));
    }
    for r in &mut report.rejected {
        *r = upload.scrub(r);
    }
    Ok(Ok(report))
}

fn render(
    viewer: &Viewer,
    indicators: u64,
    advisories: &[(String, String)],
    report: Option<&IntelReport>,
) -> Markup {
    let admin = viewer.is_admin();
    let body = html! {
        @if let Some(report) = report { (report_panel(report)) }
        section.panel {
            p { (indicators) " indicators stored; " (advisories.len()) " advisories." }
            @if !advisories.is_empty() {
                ul { @for (id, title) in advisories { li { code { (id) } " " (title) } } }
            }
        }
        @if admin {
            section.panel {
                h2 { "Import intel" }
                p.muted { "STIX 2.1, MISP, OSV, CSV or an advisory (TOML); the stored archive is hunted for what it names." }
                form method="post" action="/intel" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(viewer.0.csrf);
                    label { "File" input type="file" name="file" required; }
                    button type="submit" { "Import" }
                }
            }
        }
    };
    page("Intel", viewer, Menu::Intel, body)
}

fn report_panel(report: &IntelReport) -> Markup {
    html! {
        section.panel role="status" {
            h2 { "Imported" }
            @for f in &report.files {
                p {
                    code { (f.file) } ": "
                    @if let Some(error) = &f.error {
                        span.error { (error) }
                    } @else {
                        (f.indicators) " indicators, " (f.advisories) " advisories, "
                        (f.rejected) " rejected"
                    }
                }
            }
            p {
                (report.indicators_new) " new, " (report.indicators_changed) " changed, "
                (report.indicators_unchanged) " unchanged."
            }
            h2 { "Retro-hunt" }
            (retro_table(&report.retro, report.retro_queued.as_ref()))
            @if !report.rejected.is_empty() {
                details { summary { (report.rejected.len()) " entries rejected" }
                    ul { @for r in report.rejected.iter().take(50) { li { (r) } } }
                }
            }
        }
    }
}
