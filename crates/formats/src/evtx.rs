//! Native Windows `.evtx` files, through the `evtx` crate, mapped exactly
//! like their JSON rendering.

use std::io::Cursor;

use turncoat_core::Value;

use crate::input::Input;
use crate::{Location, ReadIssue, ReadOptions, Record, Sink, winevent};

/// Reads an `.evtx` file. The file is read whole (within the document
/// limit) since EVTX chunks are addressed by offset.
pub fn read(
    input: &mut Input,
    options: &ReadOptions,
    sink: &mut dyn Sink,
) -> Result<(), ReadIssue> {
    let bytes = input.read_document(options.limits.max_document_bytes)?;
    let name = input.name().to_owned();
    let settings = evtx::ParserSettings::default().num_threads(1);
    let mut parser = evtx::EvtxParser::from_read_seek(Cursor::new(bytes))
        .map_err(|e| {
            ReadIssue::new(
                &name,
                Location::Offset(0),
                format!("not a readable EVTX file: {e}"),
            )
        })?
        .with_configuration(settings);
    for (n, record) in parser.records_json_value().enumerate() {
        match record {
            Ok(r) => {
                let location = Location::Record(r.event_record_id);
                match winevent::map_event(&r.data, options.host.as_deref()) {
                    Ok(mut event) => {
                        if event.fields.get("EventRecordID").is_none() {
                            event
                                .fields
                                .push("EventRecordID", Value::Int(r.event_record_id as i64));
                        }
                        sink.record(Record::Event(event), location);
                    }
                    Err(e) => sink.skipped(ReadIssue::new(&name, location, e)),
                }
            }
            Err(e) => sink.skipped(ReadIssue::new(
                &name,
                Location::Record(n as u64 + 1),
                format!("bad EVTX record: {e}"),
            )),
        }
    }
    Ok(())
}
