#![no_main]
//! Notifications written from hostile alert fields (a title, a source or
//! an endpoint an attacker chose): a syslog or CEF message stays one
//! line, and chat payloads stay JSON.

use libfuzzer_sys::fuzz_target;
use turncoat_respond::notify::{NotifyFormat, render};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts: Vec<&str> = text.splitn(4, '\u{1}').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    let doc = serde_json::json!({
        "id": part(0),
        "event": part(1),
        "time": "2023-03-29T10:00:00Z",
        "alert": {
            "tenant": part(2), "endpoint": part(3), "kind": part(1),
            "source": part(0), "title": part(2), "severity": part(3), "status": part(1)
        }
    });
    for format in NotifyFormat::ALL {
        let out = render(format, &doc, part(3), part(0));
        if format.is_webhook() {
            let _: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        } else {
            assert!(!out.contains(['\n', '\r']), "{format:?} {out:?}");
        }
    }
});
