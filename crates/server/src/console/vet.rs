//! `/vet`: upload a release and, optionally, the one before it; read the
//! verdict, the findings and what changed between them, as `turncoat
//! vet` reports them (with the stored intel's indicators matched).

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::upload::Upload;
use super::{Menu, Viewer, failed, page};
use crate::{AppState, Problem};

/// Paths listed per change in the diff; the rest are counted.
const DIFF_LISTED: usize = 50;

pub(super) async fn form(viewer: Viewer) -> Response {
    render(&viewer, None).into_response()
}

/// `POST /vet`: a multipart form with `csrf`, `release` and optionally
/// `previous`.
pub(super) async fn submit(
    State(state): State<AppState>,
    viewer: Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if !viewer.can_triage() {
        return failed(
            &viewer,
            Problem::new(
                axum::http::StatusCode::FORBIDDEN,
                "a viewer does not vet releases",
            ),
        );
    }
    let parts = ["release", "previous"];
    let upload =
        match super::upload::take(&viewer, multipart, &parts, crate::vet::MAX_ARTIFACT_BYTES).await
        {
            Ok(Ok(upload)) => upload,
            Ok(Err(refused)) => return refused,
            Err(p) => return failed(&viewer, p),
        };
    match vet_upload(&state, &upload).await {
        Ok(report) => render(&viewer, Some((&report, &upload))).into_response(),
        Err(mut p) => {
            p.detail = upload.scrub(&p.detail);
            failed(&viewer, p)
        }
    }
}

async fn vet_upload(state: &AppState, upload: &Upload) -> Result<turncoat_vet::Report, Problem> {
    let release = upload
        .files
        .get("release")
        .cloned()
        .ok_or_else(|| Problem::bad_request("choose the release to vet"))?;
    crate::vet::vet_files(state, release, upload.files.get("previous").cloned()).await
}

fn render(viewer: &Viewer, vetted: Option<(&turncoat_vet::Report, &Upload)>) -> Markup {
    let body = html! {
        @if let Some((report, upload)) = vetted { (report_panel(report, upload)) }
        @if viewer.can_triage() {
            section.panel {
                h2 { "Vet a release" }
                p.muted { "An installer, package or archive (MSI, MSIX, DMG, PE, ELF, Mach-O, zip, wheel, npm tarball, crate, .deb …); with the release before it, what changed is judged too." }
                form method="post" action="/vet" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(viewer.0.csrf);
                    label { "Release" input type="file" name="release" required; }
                    label { "Previous release (optional)" input type="file" name="previous"; }
                    button type="submit" { "Vet" }
                }
            }
        } @else {
            p.muted { "Vetting a release is for analysts and admins." }
        }
    };
    page("Vet", viewer, Menu::Vet, body)
}

fn report_panel(report: &turncoat_vet::Report, upload: &Upload) -> Markup {
    let verdict = serde_json::to_value(report.verdict)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let class = match report.verdict {
        turncoat_vet::Verdict::Clean => "badge good",
        _ => "badge bad",
    };
    html! {
        section.panel role="status" {
            h2 { (upload.scrub(&report.artifact)) ": " span class=(class) { (verdict) } }
            p { (report.files.len()) " files examined, " (report.findings.len()) " findings." }
            @if let Some(diff) = &report.diff {
                h2 { "Against " (upload.scrub(&diff.against)) }
                p { (diff.new.len()) " new, " (diff.changed.len()) " changed, "
                    (diff.removed.len()) " removed, " (diff.unchanged) " unchanged." }
                @for (label, paths) in [("New", &diff.new), ("Changed", &diff.changed), ("Removed", &diff.removed)] {
                    @if !paths.is_empty() {
                        details { summary { (label) " (" (paths.len()) ")" }
                            ul { @for p in paths.iter().take(DIFF_LISTED) { li { code { (upload.scrub(p)) } } } }
                        }
                    }
                }
            }
            @if !report.findings.is_empty() {
                div.table-wrap { table {
                    thead { tr { th { "Severity" } th { "Finding" } th { "File" } th { "What" } } }
                    tbody {
                        @for f in &report.findings {
                            tr {
                                td { span class={ "sev sev-" (f.severity) } { (f.severity) } }
                                td { code { (f.id) } }
                                td { code { (upload.scrub(&f.file)) } }
                                td {
                                    (upload.scrub(&f.message))
                                    @if let Some(r) = &f.repeated { span.muted { " (and " (r.count - 1) " more)" } }
                                }
                            }
                        }
                    }
                } }
            }
        }
    }
}
