//! `turncoat serve`'s HTTP ingest beside the CLI's ingest of the same
//! file, in the same run: what the HTTP path (admission, decompression,
//! spooling, the commit queue, the answer after commit) costs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;

use turncoat_core::{Actor, TokenScope};
use turncoat_output::{OutputFormat, print_json};
use turncoat_store::NewTokenOwner;

use crate::measure::{
    Clock, cli_ingest, indicators, peak_rss_mb, prepared_store, print_rows, simulated_ecs,
};

pub fn http_ingest(
    events: u64,
    indicator_count: usize,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (ecs, n, bytes) = simulated_ecs(events, dir)?;
    let gz = dir.join("ecs.ndjson.gz");
    {
        let mut encoder = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz)?,
            flate2::Compression::default(),
        );
        std::io::copy(&mut std::fs::File::open(&ecs)?, &mut encoder)?;
        encoder.finish()?;
    }
    let gz_bytes = std::fs::metadata(&gz)?.len();
    let intel = indicators(indicator_count, 11);

    // Baseline: the CLI's ingest of the gzip file.
    let (mut store, tenant) = prepared_store(&dir.join("cli"), &intel)?;
    let clock = Clock::start();
    let report = cli_ingest(&mut store, &tenant, &gz)?;
    let baseline = clock.row("baseline: CLI ingest of the .gz file", report.events, None);
    drop(store);

    // The same file sent to a server in this process.
    let data = dir.join("http");
    let (mut store, tenant) = prepared_store(&data, &intel)?;
    let (_, secret) = turncoat_auth::create_token(
        &mut store,
        NewTokenOwner::Tenant(&tenant, TokenScope::Ingest),
        "bench",
        None,
        &Actor::Cli,
    )?;
    drop(store);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let server = runtime.block_on(turncoat_server::Server::bind(
        "127.0.0.1:0".parse()?,
        data,
        None,
        turncoat_server::IngestLimits::default(),
    ))?;
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = runtime.spawn(server.run(async {
        let _ = stopped.await;
    }));
    let body = std::fs::read(&gz)?;
    let clock = Clock::start();
    let answer = post(addr, &secret, &body)?;
    let accepted = answer["events"].as_u64().unwrap_or(0);
    let http = clock.row(
        "HTTP ingest: POST gzip, answered after commit",
        accepted,
        Some(baseline.per_second),
    );
    let _ = stop.send(());
    runtime.block_on(serving)??;
    anyhow::ensure!(
        accepted == report.events,
        "the server stored {accepted} events, the CLI {}: {answer}",
        report.events
    );
    let rows = vec![baseline, http];
    let summary = serde_json::json!({
        "events": n,
        "input_mb": bytes as f64 / 1e6,
        "gzip_mb": gz_bytes as f64 / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "ingest of {n} ECS events ({:.0} MB, {:.0} MB gzip), {} indicators loaded",
                bytes as f64 / 1e6,
                gz_bytes as f64 / 1e6,
                intel.len()
            );
            print_rows(&rows)?;
        }
    }
    Ok(())
}

/// Sends the body as one request and reads the JSON answer.
fn post(addr: std::net::SocketAddr, token: &str, body: &[u8]) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/v1/tenants/bench/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, json) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow::anyhow!("no answer: {response}"))?;
    anyhow::ensure!(head.starts_with("HTTP/1.1 202"), "{head}\n{json}");
    Ok(serde_json::from_str(json)?)
}
