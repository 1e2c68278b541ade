//! `/campaigns`: the same detection in several of the viewer's tenants,
//! newest first, with the member alerts of each; one shared beyond the
//! viewer's tenants is cut to their own members and names no other.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::html;

use super::{Menu, Viewer, failed, page};
use crate::AppState;

pub(super) async fn campaigns(State(state): State<AppState>, viewer: Viewer) -> Response {
    let scope = viewer.scope().clone();
    let rows = match state
        .read(move |store| {
            Ok(turncoat_engine::campaign::campaign_rows(
                store,
                &scope,
                0,
                i64::MAX,
            )?)
        })
        .await
    {
        Ok(mut rows) => {
            rows.sort_by_key(|c| std::cmp::Reverse(c.last_seen));
            rows
        }
        Err(p) => return failed(&viewer, p),
    };
    let body = html! {
        @if rows.is_empty() {
            p.muted { "No detection is shared by several of your tenants." }
        }
        @for c in &rows {
            section.panel {
                h2 { span class={ "sev sev-" (c.severity) } { (c.severity) } " " (c.title) }
                p {
                    (c.member_kind) " on " code { (c.source) } ": "
                    (c.count) " alerts in " (c.tenants.len()) " of your tenants ("
                    (c.tenants.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ")) ")"
                    @if c.beyond_scope { " and in tenants other than yours" }
                    "; dismissed in " (c.dismissed_tenants) ". "
                    span.muted { (c.first_seen) " to " (c.last_seen) }
                }
                p {
                    "Member alerts: "
                    @for (i, id) in c.member_alerts.iter().enumerate() {
                        @if i > 0 { ", " }
                        a href={ "/alerts/" (id) } { "#" (id) }
                    }
                }
            }
        }
    };
    page("Campaigns", &viewer, Menu::Campaigns, body).into_response()
}
