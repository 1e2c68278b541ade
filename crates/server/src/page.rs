//! Pages of a list: `{"items": [...], "next": cursor-or-null}`.
//!
//! A cursor is the sort key of the last row given (as hex of its JSON, so
//! it is opaque and URL-safe), not a position: rows added or removed
//! between two requests neither repeat nor vanish from later pages.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::Problem;

pub(crate) const DEFAULT_LIMIT: usize = 100;
pub(crate) const MAX_LIMIT: usize = 1_000;

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// `limit` and `cursor`, as every list takes them (fields of each
/// list's query: serde cannot flatten them into one that refuses
/// unknown parameters).
#[derive(Debug, Default)]
pub(crate) struct PageQuery {
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

/// The page of `rows` (sorted by `key`, unique per row) after `query`'s
/// cursor.
pub(crate) fn page<T, K>(
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    query: &PageQuery,
) -> Result<Page<T>, Problem>
where
    K: Ord + Serialize + DeserializeOwned,
{
    let after: Option<K> = query.cursor.as_deref().map(decode).transpose()?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let mut items: Vec<T> = rows
        .into_iter()
        .filter(|r| after.as_ref().is_none_or(|a| key(r) > *a))
        .take(limit + 1)
        .collect();
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| encode(&key(r)))
    } else {
        None
    };
    Ok(Page { items, next })
}

/// A cursor for the row whose sort key is `key`.
pub(crate) fn encode<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("sort keys serialise");
    json.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sort key a cursor stands for; 400 for one this API did not give.
pub(crate) fn decode<K: DeserializeOwned>(text: &str) -> Result<K, Problem> {
    let bad = || Problem::bad_request(format!("cursor {text:?} is not one this API gave"));
    if !text.len().is_multiple_of(2) || text.len() > 8_192 {
        return Err(bad());
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2).ok_or_else(bad)?, 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, Problem>>()?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}
