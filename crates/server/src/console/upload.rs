//! File uploads from the console's forms: multipart, the session's
//! anti-forgery token first, each file spooled to a temporary directory
//! that goes when the upload is dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use axum::extract::Multipart;
use axum::extract::multipart::MultipartRejection;
use axum::response::Response;

use super::Viewer;
use crate::{AppState, Problem};

/// A form's files, each at `DIR/PART/NAME`.
pub(super) struct Upload {
    dir: tempfile::TempDir,
    pub files: BTreeMap<String, PathBuf>,
}

impl Upload {
    /// Runs `import` with the writer on the form's `file` part (`missing`
    /// when none was chosen), the spool directory beside it; gives the
    /// upload back for the report to be scrubbed. A problem names the
    /// upload, never the spool.
    pub async fn import<R, F>(
        self,
        state: &AppState,
        missing: &'static str,
        import: F,
    ) -> Result<(R, Upload), Problem>
    where
        R: Send + 'static,
        F: FnOnce(
                &mut dyn turncoat_store::Store,
                PathBuf,
                &std::path::Path,
            ) -> Result<R, turncoat_engine::EngineError>
            + Send
            + 'static,
    {
        let file = self
            .files
            .get("file")
            .cloned()
            .ok_or_else(|| Problem::bad_request(missing))?;
        let spool = self.dir.path().join("file");
        let (imported, upload) = state
            .write(move |store| Ok((import(store, file, &spool), self)))
            .await?;
        match imported {
            Ok(report) => Ok((report, upload)),
            Err(e) => {
                let mut problem = Problem::from(e);
                problem.detail = upload.scrub(&problem.detail);
                Err(problem)
            }
        }
    }

    /// `text` without the spool's paths: a report names an upload by the
    /// file name it was sent with, never where the server put it.
    pub fn scrub(&self, text: &str) -> String {
        self.files.keys().fold(text.to_owned(), |t, part| {
            t.replace(&format!("{}/{part}/", self.dir.path().display()), "")
        })
    }
}

/// The form's file parts named in `parts` (others are ignored, and so is
/// a file input left empty), each at most `max` bytes; or the refusal of
/// a form without the session's token, checked before anything is
/// written.
pub(super) async fn take(
    viewer: &Viewer,
    multipart: Result<Multipart, MultipartRejection>,
    parts: &[&str],
    max: usize,
) -> Result<Result<Upload, Response>, Problem> {
    let mut multipart = multipart.map_err(|e| Problem::bad_request(e.body_text()))?;
    let dir = tempfile::tempdir().map_err(|e| Problem::internal(&e))?;
    let mut files = BTreeMap::new();
    let mut csrf = String::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| Problem::bad_request(e.body_text()))?
    {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "csrf" {
            csrf = field.text().await.unwrap_or_default();
            continue;
        }
        if !parts.contains(&name.as_str()) || field.file_name().is_none_or(str::is_empty) {
            continue;
        }
        if let Err(refused) = viewer.sent_token(&csrf) {
            return Ok(Err(refused));
        }
        let path = crate::api::save_part(&mut field, &dir.path().join(&name), max).await?;
        files.insert(name, path);
    }
    if let Err(refused) = viewer.sent_token(&csrf) {
        return Ok(Err(refused));
    }
    Ok(Ok(Upload { dir, files }))
}
