#![no_main]
//! The Sigma rule parser and compiler under arbitrary text, then the
//! assembled rule set (filters, correlations) run over a few events.

use libfuzzer_sys::fuzz_target;
use turncoat_core::{Event, Fields, Logsource, Time};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let documents = turncoat_sigma::parse_file("fuzz.yml", text)
        .into_iter()
        .filter_map(Result::ok)
        .map(|d| ("fuzz.yml".to_owned(), d))
        .collect();
    let set = turncoat_sigma::RuleSet::build(documents, Vec::new());
    let mut router = set.router();
    let mut correlator = set.correlator();
    let mut hits = Vec::new();
    for (i, user) in ["alice", "bob", "alice", ""].iter().enumerate() {
        let mut fields = Fields::new();
        fields.push("EventID", 4625);
        fields.push("TargetUserName", *user);
        fields.push("CommandLine", "cmd /c whoami");
        let event = Event {
            time: Time::from_epoch_secs(i as i64 * 30),
            host: "h".into(),
            logsource: Logsource::new(Some("windows"), Some("process_creation"), None),
            fields,
        };
        let mut matched = Vec::new();
        router.matches(&event, |r, _| matched.push(r));
        for r in matched {
            correlator.observe(r, event.time, &event.host, &event.fields, 0, &mut hits);
        }
    }
    correlator.flush(None, &mut hits);
});
