//! `POST /api/v1/vet`: a release, and optionally the one before it, as a
//! multipart form (`release`, `previous`); the findings and verdict of
//! `turncoat vet`, as JSON or SARIF, with the stored intel's indicators
//! matched against the release's hashes and strings.

use axum::Json;
use axum::extract::{Multipart, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::api::Params;
use crate::auth::Caller;
use crate::{AppState, Problem};

/// The largest file taken per part.
pub(crate) const MAX_ARTIFACT_BYTES: usize = 512 << 20;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct VetQuery {
    /// `json` (the default) or `sarif`.
    format: Option<String>,
}

/// Vets an uploaded release (analysts, admins, write tokens).
#[utoipa::path(post, path = "/vet", tag = "vet", params(VetQuery),
    request_body(content = Vec<u8>, content_type = "multipart/form-data",
        description = "`release`: the artifact (its file name tells its kind); `previous`: the release before it, optional"),
    responses((status = 200, description = "The vet report (verdict, findings, diff), or SARIF 2.1.0 with `format=sarif`",
            content((turncoat_vet::Report = "application/json"), (Object = "application/sarif+json"))),
        (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 413, body = Problem)))]
pub(crate) async fn vet(
    State(state): State<AppState>,
    caller: Caller,
    Params(query): Params<VetQuery>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, Problem> {
    caller.must_triage()?;
    let sarif = match query.format.as_deref() {
        None | Some("json") => false,
        Some("sarif") => true,
        Some(other) => {
            return Err(Problem::bad_request(format!(
                "format {other:?}: json or sarif"
            )));
        }
    };
    let mut multipart = multipart.map_err(|e| Problem::bad_request(e.body_text()))?;
    let dir = tempfile::tempdir().map_err(|e| Problem::internal(&e))?;
    let (mut release, mut previous) = (None, None);
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?
    {
        let part = field.name().unwrap_or_default().to_owned();
        let slot = match part.as_str() {
            "release" => &mut release,
            "previous" => &mut previous,
            other => {
                return Err(Problem::bad_request(format!(
                    "unknown part {other:?}: release or previous"
                )));
            }
        };
        let path =
            crate::api::save_part(&mut field, &dir.path().join(&part), MAX_ARTIFACT_BYTES).await?;
        *slot = Some(path);
    }
    let Some(release) = release else {
        return Err(Problem::bad_request("the form needs a release part"));
    };
    let spooled = dir.path().display().to_string();
    let report = vet_files(&state, release, previous).await?;
    drop(dir);
    let value = if sarif {
        turncoat_vet::sarif::sarif(&report)
    } else {
        serde_json::to_value(&report).map_err(|e| Problem::internal(&e))?
    };
    // Name the uploads, never the server's paths.
    let text = value
        .to_string()
        .replace(&format!("{spooled}/release/"), "")
        .replace(&format!("{spooled}/previous/"), "previous:");
    let report = serde_json::from_str::<Value>(&text).map_err(|e| Problem::internal(&e))?;
    let mut answer = Json(report).into_response();
    if sarif {
        answer.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/sarif+json"),
        );
    }
    Ok(answer)
}

/// Vets `release` (against `previous`) as `turncoat vet` does, with the
/// stored intel's indicators, on a blocking thread. The report names the
/// files by their paths here: the caller scrubs them.
pub(crate) async fn vet_files(
    state: &AppState,
    release: std::path::PathBuf,
    previous: Option<std::path::PathBuf>,
) -> Result<turncoat_vet::Report, Problem> {
    let indicators = state
        .read(|store| {
            Ok(store
                .indicators()?
                .into_iter()
                .map(|s| s.indicator)
                .collect::<Vec<_>>())
        })
        .await?;
    tokio::task::spawn_blocking(move || {
        let options = turncoat_vet::Options {
            indicators,
            ..turncoat_vet::Options::default()
        };
        turncoat_vet::vet(&release, previous.as_deref(), &options)
            .map_err(|e| Problem::bad_request(e.to_string()))
    })
    .await
    .map_err(|e| Problem::internal(&e))?
}
