//! Notifications as their receivers read them. Each is kept as one JSON
//! document (`{"id", "event", "time", "tenant", "alert", "change"}`) and
//! written at delivery in the target's format: the document itself,
//! a Slack or Teams message, a syslog line (RFC 5424 with the alert's
//! fields as structured data) or a CEF line.

use serde_json::{Value, json};

/// The formats a notification is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotifyFormat {
    Json,
    Slack,
    Teams,
    Rfc5424,
    Cef,
}

impl NotifyFormat {
    pub const ALL: [NotifyFormat; 5] = [
        NotifyFormat::Json,
        NotifyFormat::Slack,
        NotifyFormat::Teams,
        NotifyFormat::Rfc5424,
        NotifyFormat::Cef,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotifyFormat::Json => "json",
            NotifyFormat::Slack => "slack",
            NotifyFormat::Teams => "teams",
            NotifyFormat::Rfc5424 => "rfc5424",
            NotifyFormat::Cef => "cef",
        }
    }

    /// Whether a webhook (else a syslog collector) takes it.
    pub fn is_webhook(self) -> bool {
        matches!(
            self,
            NotifyFormat::Json | NotifyFormat::Slack | NotifyFormat::Teams
        )
    }
}

impl std::str::FromStr for NotifyFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<NotifyFormat, String> {
        NotifyFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("format {s:?}: json, slack, teams, rfc5424 or cef"))
    }
}

/// The events a target may hear of.
pub const EVENTS: [&str; 4] = ["new", "status", "resurfaced", "campaign"];

fn text<'a>(doc: &'a Value, path: &[&str]) -> &'a str {
    path.iter().fold(doc, |v, k| &v[*k]).as_str().unwrap_or("")
}

/// One line an analyst reads: severity, where, what, and what happened.
pub fn summary(doc: &Value) -> String {
    let alert = &doc["alert"];
    let event = text(doc, &["event"]);
    let what = match event {
        "status" => format!(" is now {}", alert["status"].as_str().unwrap_or("changed")),
        "resurfaced" => " resurfaced".to_owned(),
        "campaign" => " (campaign)".to_owned(),
        _ => String::new(),
    };
    let place = match (alert["tenant"].as_str(), alert["endpoint"].as_str()) {
        (Some(t), Some(e)) => format!("{t}/{e}: "),
        (Some(t), None) => format!("{t}: "),
        _ => String::new(),
    };
    format!(
        "[{}] {place}{}{what}",
        alert["severity"].as_str().unwrap_or("info"),
        alert["title"].as_str().unwrap_or("alert")
    )
}

/// `doc` in `format`; `host` and `version` go where syslog and CEF name
/// the sender.
pub fn render(format: NotifyFormat, doc: &Value, host: &str, version: &str) -> String {
    match format {
        NotifyFormat::Json => doc.to_string(),
        NotifyFormat::Slack => json!({ "text": summary(doc) }).to_string(),
        NotifyFormat::Teams => teams(doc).to_string(),
        NotifyFormat::Rfc5424 => rfc5424(doc, host),
        NotifyFormat::Cef => cef(doc, version),
    }
}

fn teams(doc: &Value) -> Value {
    let alert = &doc["alert"];
    let facts: Vec<Value> = ["tenant", "endpoint", "kind", "source", "status", "severity"]
        .iter()
        .filter_map(|k| {
            alert[*k]
                .as_str()
                .map(|v| json!({ "title": k, "value": v }))
        })
        .collect();
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    { "type": "TextBlock", "text": summary(doc), "wrap": true, "weight": "Bolder" },
                    { "type": "FactSet", "facts": facts }
                ]
            }
        }]
    })
}

/// syslog severity for an alert's severity.
fn syslog_severity(severity: &str) -> u8 {
    match severity {
        "critical" => 2,
        "high" => 3,
        "medium" => 4,
        "low" => 5,
        _ => 6,
    }
}

/// RFC 5424, facility 14 (log alert), the alert's fields as structured
/// data under `turncoat@32473` (the documentation enterprise number).
fn rfc5424(doc: &Value, host: &str) -> String {
    let alert = &doc["alert"];
    let pri = 14 * 8 + u32::from(syslog_severity(alert["severity"].as_str().unwrap_or("")));
    // PARAM-VALUE escapes `"`, `\` and `]` (RFC 5424 6.3.3); a message
    // is one line, so line breaks become spaces.
    let escape = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace(']', "\\]")
            .replace(['\n', '\r'], " ")
    };
    let mut params = vec![format!("id=\"{}\"", escape(text(doc, &["id"])))];
    for k in ["tenant", "endpoint", "kind", "source", "severity", "status"] {
        if let Some(v) = alert[k].as_str() {
            params.push(format!("{k}=\"{}\"", escape(v)));
        }
    }
    if let Some(id) = alert["id"].as_i64() {
        params.push(format!("alert=\"{id}\""));
    }
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let msgid: String = text(doc, &["event"])
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(32)
        .collect();
    format!(
        "<{pri}>1 {} {} turncoat - {} [turncoat@32473 {}] {}",
        text(doc, &["time"]),
        if host.is_empty() { "-" } else { &host },
        if msgid.is_empty() { "-" } else { &msgid },
        params.join(" "),
        summary(doc).replace(['\n', '\r'], " ")
    )
}

/// CEF severity (0-10) for an alert's severity.
fn cef_severity(severity: &str) -> u8 {
    match severity {
        "critical" => 10,
        "high" => 8,
        "medium" => 5,
        "low" => 3,
        _ => 1,
    }
}

/// ArcSight CEF: `CEF:0|turncoat|turncoat|version|kind:source|title|severity|extension`.
/// Header fields escape `\` and `|`; extension values `\`, `=` and line
/// breaks.
fn cef(doc: &Value, version: &str) -> String {
    let alert = &doc["alert"];
    let header = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('|', "\\|")
            .replace(['\n', '\r'], " ")
    };
    let value = |v: &str| {
        v.replace('\\', "\\\\")
            .replace('=', "\\=")
            .replace('\n', "\\n")
            .replace('\r', "\\r")
    };
    let kind = alert["kind"].as_str().unwrap_or("alert");
    let source = alert["source"].as_str().unwrap_or("");
    let mut ext = vec![
        format!("act={}", value(text(doc, &["event"]))),
        format!("externalId={}", value(text(doc, &["id"]))),
    ];
    for (key, field) in [
        ("cs1", "tenant"),
        ("dhost", "endpoint"),
        ("outcome", "status"),
    ] {
        if let Some(v) = alert[field].as_str() {
            if key == "cs1" {
                ext.push("cs1Label=tenant".to_owned());
            }
            ext.push(format!("{key}={}", value(v)));
        }
    }
    ext.push(format!("msg={}", value(&summary(doc))));
    format!(
        "CEF:0|turncoat|turncoat|{}|{}|{}|{}|{}",
        header(version),
        header(&format!("{kind}:{source}")),
        header(alert["title"].as_str().unwrap_or("alert")),
        cef_severity(alert["severity"].as_str().unwrap_or("")),
        ext.join(" ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Value {
        json!({
            "id": "new:7",
            "event": "new",
            "time": "2023-03-29T10:00:00.000Z",
            "alert": {
                "id": 7, "tenant": "acme", "endpoint": "ws-1", "kind": "ioc",
                "source": "a|b=c\\d", "title": "contact with a|b", "severity": "high",
                "status": "new"
            }
        })
    }

    #[test]
    fn cef_escapes_header_and_extension() {
        let line = render(NotifyFormat::Cef, &doc(), "h", "0.1.0");
        assert!(
            line.starts_with(
                "CEF:0|turncoat|turncoat|0.1.0|ioc:a\\|b=c\\\\d|contact with a\\|b|8|"
            ),
            "{line}"
        );
        assert!(
            line.contains("cs1Label=tenant cs1=acme dhost=ws-1 outcome=new"),
            "{line}"
        );
        assert!(
            line.contains("msg=[high] acme/ws-1: contact with a|b"),
            "{line}"
        );
    }

    #[test]
    fn rfc5424_structured_data() {
        let line = render(NotifyFormat::Rfc5424, &doc(), "mssp-1", "0.1.0");
        assert!(line.starts_with("<115>1 2023-03-29T10:00:00.000Z mssp-1 turncoat - new [turncoat@32473 id=\"new:7\" tenant=\"acme\""), "{line}");
        assert!(line.contains("source=\"a|b=c\\\\d\""), "{line}");
    }

    #[test]
    fn a_field_cannot_start_a_line_of_its_own() {
        // Found by the `notify` fuzz target: a line break in an id.
        let mut d = doc();
        d["id"] = json!("new:7\n<13>1 forged");
        d["alert"]["title"] = json!("x\r\nCEF:0|forged");
        for format in [NotifyFormat::Rfc5424, NotifyFormat::Cef] {
            let line = render(format, &d, "h", "1");
            assert!(!line.contains(['\n', '\r']), "{format:?}: {line:?}");
        }
    }

    #[test]
    fn chat_payloads_say_what_happened() {
        let slack: Value =
            serde_json::from_str(&render(NotifyFormat::Slack, &doc(), "", "")).unwrap();
        assert_eq!(slack["text"], "[high] acme/ws-1: contact with a|b");
        let teams: Value =
            serde_json::from_str(&render(NotifyFormat::Teams, &doc(), "", "")).unwrap();
        assert_eq!(teams["attachments"][0]["content"]["type"], "AdaptiveCard");
    }
}
