//! Polling TAXII 2.1 collections for intel: every object added since the
//! last poll, page by page (`added_after`, `next`), imported as a STIX
//! bundle named after the feed, so the import's retro-hunt runs on it as
//! on any intel; the feed then resumes from the last page's
//! `X-TAXII-Date-Added-Last`.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use turncoat_core::{Actor, Time};
use turncoat_engine::intel::IntelReport;
use turncoat_store::TaxiiFeed;

const TAXII: &str = "application/taxii+json;version=2.1";
/// Objects asked for per page.
const PAGE: usize = 500;
/// A page's body at most.
const MAX_PAGE_BYTES: u64 = 64 << 20;
/// Pages and bytes fetched per poll at most; the next poll goes on from
/// where this one stopped.
const MAX_PAGES: usize = 200;
const MAX_POLL_BYTES: usize = 256 << 20;

/// What one poll of one feed did.
#[derive(Clone, Debug, Serialize)]
pub struct PollReport {
    pub feed: String,
    pub pages: usize,
    pub objects: usize,
    /// Where the next poll resumes.
    pub added_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub import: Option<IntelReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The objects a poll fetched, and where the next resumes.
pub struct Fetched {
    objects: Vec<Value>,
    pages: usize,
    last_added: Option<String>,
}

/// Whether a feed name can name the file its objects are imported from
/// (and so the indicators' source).
pub fn valid_feed_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Fetches every object added to the feed's collection since its cursor.
/// No store is held meanwhile: a slow server stalls nobody.
pub fn fetch(feed: &TaxiiFeed, secret: Option<&str>) -> Result<Fetched, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let base = format!(
        "{}/collections/{}/objects/",
        feed.api_root.trim_end_matches('/'),
        feed.collection
    );
    let auth = secret.map(|s| {
        use base64::Engine;
        let pair = format!("{}:{s}", feed.username.as_deref().unwrap_or(""));
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    });
    let mut fetched = Fetched {
        objects: Vec::new(),
        pages: 0,
        last_added: None,
    };
    let mut next: Option<String> = None;
    let mut bytes = 0usize;
    while fetched.pages < MAX_PAGES && bytes < MAX_POLL_BYTES {
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some(after) = &feed.added_after {
            query.push(("added_after", after.clone()));
        }
        if let Some(n) = &next {
            query.push(("next", n.clone()));
        }
        let url = format!(
            "{base}?{}",
            serde_urlencoded::to_string(&query).map_err(|e| e.to_string())?
        );
        let mut request = agent.get(&url).header("Accept", TAXII);
        if let Some(a) = &auth {
            request = request.header("Authorization", a);
        }
        let mut answer = request.call().map_err(|e| format!("{url}: {e}"))?;
        let last = answer
            .headers()
            .get("X-TAXII-Date-Added-Last")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = answer
            .body_mut()
            .with_config()
            .limit(MAX_PAGE_BYTES)
            .read_to_string()
            .map_err(|e| format!("{url}: {e}"))?;
        let envelope: Value =
            serde_json::from_str(&body).map_err(|e| format!("{url}: not a TAXII envelope: {e}"))?;
        fetched.pages += 1;
        bytes += body.len();
        if let Some(objects) = envelope["objects"].as_array() {
            fetched.objects.extend(objects.iter().cloned());
        }
        fetched.last_added = last.or(fetched.last_added);
        match (envelope["more"].as_bool(), envelope["next"].as_str()) {
            (Some(true), Some(n)) => next = Some(n.to_owned()),
            _ => break,
        }
    }
    Ok(fetched)
}

/// Imports what a poll fetched (the retro-hunt runs on it) and records
/// where the next poll resumes; a failed fetch is recorded as the feed's
/// error, its cursor kept.
pub fn import(
    store: &mut dyn turncoat_store::Store,
    feed: &TaxiiFeed,
    fetched: Result<Fetched, String>,
    actor: &Actor,
    hand_off: Option<&crate::HandOff>,
) -> Result<PollReport, turncoat_engine::EngineError> {
    let now = Time::now();
    let mut report = PollReport {
        feed: feed.name.clone(),
        pages: 0,
        objects: 0,
        added_after: feed.added_after.clone(),
        import: None,
        error: None,
    };
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            store.record_taxii_poll(feed.id, None, Some(&e), now)?;
            report.error = Some(e);
            return Ok(report);
        }
    };
    report.pages = fetched.pages;
    report.objects = fetched.objects.len();
    if !fetched.objects.is_empty() {
        let dir = tempfile::tempdir().map_err(|e| turncoat_engine::EngineError::Input {
            path: feed.name.clone(),
            message: e.to_string(),
        })?;
        let file = dir.path().join(&feed.name);
        let bundle = json!({
            "type": "bundle",
            "id": format!("bundle--{}", turncoat_respond::stix::uuid_of(&format!("taxii {} {}", feed.name, now.0))),
            "objects": fetched.objects,
        });
        std::fs::write(&file, bundle.to_string()).map_err(|e| {
            turncoat_engine::EngineError::Input {
                path: feed.name.clone(),
                message: e.to_string(),
            }
        })?;
        let mut imported = crate::handoff::import_intel(
            hand_off,
            store,
            &[file],
            None,
            &turncoat_engine::NoProgress,
            actor,
        )?;
        let spool = format!("{}/", dir.path().display());
        for f in &mut imported.files {
            f.file = f.file.replace(&spool, "");
        }
        report.import = Some(imported);
    }
    if fetched.last_added.is_some() {
        report.added_after = fetched.last_added.clone();
    }
    store.record_taxii_poll(feed.id, fetched.last_added.as_deref(), None, now)?;
    Ok(report)
}
