//! `/rules`: the stored Sigma rules, and (admins) importing a rule file
//! by upload, answered with the import report: what compiled, what
//! failed and why, what can never fire here, and the retro-hunt of the
//! new or changed rules over the archive.

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use turncoat_engine::rules::RulesReport;
use turncoat_store::StoredRule;

use super::upload::Upload;
use super::{Menu, Viewer, failed, page, retro_table};
use crate::{AppState, Problem};

/// The largest rule file taken by upload.
const MAX_RULES_BYTES: usize = 64 << 20;

pub(super) async fn rules(State(state): State<AppState>, viewer: Viewer) -> Response {
    match state.read(|store| Ok(store.rules()?)).await {
        Ok(rules) => render(&viewer, &rules, None).into_response(),
        Err(p) => failed(&viewer, p),
    }
}

/// `POST /rules`: a multipart form with `csrf` and `file`.
pub(super) async fn import(
    State(state): State<AppState>,
    viewer: Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let upload = match take_rules(&viewer, multipart).await {
        Ok(Ok(upload)) => upload,
        Ok(Err(refused)) => return refused,
        Err(p) => return failed(&viewer, p),
    };
    match import_upload(&state, &viewer, upload).await {
        Ok(report) => match state.read(|store| Ok(store.rules()?)).await {
            Ok(rules) => render(&viewer, &rules, Some(&report)).into_response(),
            Err(p) => failed(&viewer, p),
        },
        Err(p) => failed(&viewer, p),
    }
}

async fn take_rules(
    viewer: &Viewer,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Result<Upload, Response>, Problem> {
    if !viewer.is_admin() {
        return Err(Problem::new(
            axum::http::StatusCode::FORBIDDEN,
            "only an admin imports rules",
        ));
    }
    super::upload::take(viewer, multipart, &["file"], MAX_RULES_BYTES).await
}

async fn import_upload(
    state: &AppState,
    viewer: &Viewer,
    upload: Upload,
) -> Result<RulesReport, Problem> {
    let actor = viewer.0.principal.actor.clone();
    let hand_off = state.hand_off();
    let (mut report, upload) = upload
        .import(
            state,
            "choose a rule file to import",
            move |store, file, spool| {
                if !file.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                    return Err(turncoat_engine::EngineError::Input {
                        path: file.display().to_string(),
                        message: "a rule file ends in .yml or .yaml".into(),
                    });
                }
                crate::handoff::import_rules(
                    hand_off.as_ref(),
                    store,
                    &[file],
                    Some(spool),
                    &[],
                    &turncoat_engine::NoProgress,
                    &actor,
                )
            },
        )
        .await?;
    for f in &mut report.failed {
        *f = upload.scrub(f);
    }
    Ok(report)
}

fn render(viewer: &Viewer, rules: &[StoredRule], report: Option<&RulesReport>) -> Markup {
    let body = html! {
        @if let Some(r) = report {
            section.panel role="status" {
                h2 { "Imported" }
                p {
                    (r.compiled) " rules compiled, " (r.new_or_changed.len()) " new or changed, "
                    (r.failed.len()) " failed, " (r.excluded) " left out by status."
                }
                @if !r.failed.is_empty() {
                    ul { @for f in &r.failed { li.error { (f) } } }
                }
                @if !r.unproducible.is_empty() {
                    p.muted { "Rules no reader here feeds (they load but cannot fire): "
                        (r.unproducible.iter().map(|(l, n)| format!("{l} ({n})")).collect::<Vec<_>>().join(", ")) }
                }
                h2 { "Retro-hunt" }
                (retro_table(&r.retro, r.retro_queued.as_ref()))
            }
        }
        section.panel {
            p { (rules.len()) " rules run on every event ingested." }
            @if !rules.is_empty() {
                div.table-wrap { table {
                    thead { tr { th { "Title" } th.hide-narrow { "Id" } th { "File" } th { "Updated" } } }
                    tbody {
                        @for r in rules {
                            tr {
                                td { details { summary { (r.title) } pre.evidence { (r.text) } } }
                                td.hide-narrow { code { (r.id) } }
                                td { (r.source) }
                                td { (r.updated) }
                            }
                        }
                    }
                } }
            }
        }
        @if viewer.is_admin() {
            section.panel {
                h2 { "Import rules" }
                p.muted { "A Sigma rule file (YAML, one rule or several); the stored archive is hunted with the rules that are new or changed." }
                form method="post" action="/rules" enctype="multipart/form-data" {
                    input type="hidden" name="csrf" value=(viewer.0.csrf);
                    label { "File" input type="file" name="file" accept=".yml,.yaml" required; }
                    button type="submit" { "Import" }
                }
            }
        }
    };
    page("Rules", viewer, Menu::Rules, body)
}
