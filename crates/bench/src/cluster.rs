//! Cluster mode's ingest rate: a server publishing to NATS JetStream and
//! 1, 2, 4… workers committing to PostgreSQL, beside a server on the
//! embedded store taking the same requests, in the same run.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use turncoat_core::{Actor, TenantName, TokenScope};
use turncoat_output::{OutputFormat, print_json};
use turncoat_sim::{Config, Scenario};
use turncoat_store::{NewTokenOwner, Store, StoreLocation};

use crate::measure::{indicators, peak_rss_mb, print_rows, row};

/// Bytes per request: what a shipper sends at a time.
const REQUEST_BYTES: usize = 2 << 20;

/// One request: its tenant's index and body.
struct Request {
    tenant: usize,
    body: Vec<u8>,
}

pub fn cluster_ingest(
    events: u64,
    tenant_count: usize,
    worker_counts: &[usize],
    postgres: &str,
    queue: &str,
    dir: &Path,
    format: OutputFormat,
) -> anyhow::Result<()> {
    let (names, requests, bytes) = simulated_requests(events, tenant_count, dir)?;
    let intel = indicators(10_000, 11);
    let prepare = |store: &mut dyn Store| -> anyhow::Result<Vec<String>> {
        store.upsert_indicators(&mut intel.iter().cloned(), &Actor::Cli)?;
        names
            .iter()
            .map(|name| {
                let tenant = store.add_tenant(&TenantName::new(name)?, &Actor::Cli)?;
                let owner = NewTokenOwner::Tenant(&tenant, TokenScope::Ingest);
                Ok(turncoat_auth::create_token(store, owner, "bench", None, &Actor::Cli)?.1)
            })
            .collect()
    };

    // Baseline: the embedded store, its server committing before it answers.
    let embedded = StoreLocation::Dir(dir.join("embedded"));
    let tokens = prepare(&mut *writer(&embedded)?)?;
    let served = Served::start(embedded, None, 0)?;
    let started = Instant::now();
    let answers = send_all(served.addr, &names, &tokens, &requests)?;
    let seconds = started.elapsed().as_secs_f64();
    let stored: u64 = answers
        .iter()
        .map(|a| a["events"].as_u64().unwrap_or(0))
        .sum();
    served.stop()?;
    let baseline = row(
        "baseline: embedded store, answered after commit",
        stored,
        seconds,
        None,
    );
    let mut rows = vec![baseline];
    let mut phases = Vec::new();

    let mut databases = turncoat_store::conformance::TestDatabases::at(postgres, "bench");
    for &workers in worker_counts {
        let url = databases.fresh();
        let location = StoreLocation::parse(&url);
        let tokens = prepare(&mut *writer(&location)?)?;
        let namespace = format!("bench{}w{workers}", std::process::id());
        let queue_url = turncoat_queue::QueueUrl::parse(&format!(
            "{}/{namespace}",
            queue.trim_end_matches('/')
        ))?;
        let served = Served::start(location, Some(queue_url.clone()), workers)?;
        let started = Instant::now();
        let answers = send_all(served.addr, &names, &tokens, &requests)?;
        let accepted = started.elapsed().as_secs_f64();
        let ids: Vec<String> = answers
            .iter()
            .map(|a| a["batch"].as_str().unwrap_or_default().to_owned())
            .collect();
        let events = served.wait_for(&queue_url, &ids)?;
        let seconds = started.elapsed().as_secs_f64();
        let commit_seconds = served.commit_seconds();
        served.stop()?;
        anyhow::ensure!(
            events == stored,
            "{workers} workers stored {events} events, the embedded store {stored}"
        );
        rows.push(row(
            &format!("{workers} worker(s): 202 once queued, until every batch is committed"),
            events,
            seconds,
            Some(rows[0].per_second),
        ));
        phases.push(serde_json::json!({
            "workers": workers,
            "all_accepted_seconds": accepted,
            "until_committed_seconds": seconds,
            "commit_seconds_summed_over_workers": commit_seconds,
        }));
    }
    let summary = serde_json::json!({
        "events": stored,
        "tenants": tenant_count,
        "requests": requests.len(),
        "input_mb": bytes as f64 / 1e6,
        "peak_rss_mb": peak_rss_mb(),
        "rows": rows,
        "phases": phases,
    });
    match format {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Table => {
            println!(
                "{stored} ECS events of {tenant_count} tenants ({:.0} MB) in {} requests of ~2 MB, \
                 10,000 indicators loaded",
                bytes as f64 / 1e6,
                requests.len()
            );
            print_rows(&rows)?;
            for p in &phases {
                println!(
                    "{} worker(s): all accepted after {:.2} s, committed after {:.2} s; \
                     commits took {:.2} s summed over workers",
                    p["workers"],
                    p["all_accepted_seconds"].as_f64().unwrap_or(0.0),
                    p["until_committed_seconds"].as_f64().unwrap_or(0.0),
                    p["commit_seconds_summed_over_workers"]
                        .as_f64()
                        .unwrap_or(0.0)
                );
            }
        }
    }
    Ok(())
}

fn writer(store: &StoreLocation) -> turncoat_store::Result<turncoat_store::AnyStore> {
    store.open_writer(&mut turncoat_store::LockWait {
        timeout: Duration::from_secs(5),
        purpose: "turncoat-bench",
        on_wait: &mut |_, _| {},
    })
}

/// The simulator's tenants' ECS events, cut into requests at line ends;
/// the tenants' names, the requests and their bytes.
fn simulated_requests(
    events: u64,
    tenants: usize,
    dir: &Path,
) -> anyhow::Result<(Vec<String>, Vec<Request>, u64)> {
    let (endpoints, days) = (20usize, 14u64);
    let cfg = Config {
        tenants,
        endpoints,
        days,
        seed: 7,
        scenario: Scenario::ThreeCx,
        events_per_endpoint_day: (events / (tenants * endpoints) as u64 / days).max(1),
        ..Config::default()
    };
    let fleet = dir.join("fleet");
    let (truth, _) = turncoat_sim::simulate(&cfg, &fleet, &mut |_| {})?;
    let mut names = Vec::new();
    let mut requests = Vec::new();
    let mut bytes = 0;
    for (i, t) in truth.tenants.iter().enumerate() {
        let text = std::fs::read(fleet.join(&t.name).join("ecs.ndjson"))?;
        bytes += text.len() as u64;
        let mut at = 0;
        while at < text.len() {
            let end = (at + REQUEST_BYTES).min(text.len());
            let cut = text[end..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |p| end + p + 1);
            requests.push(Request {
                tenant: i,
                body: text[at..cut].to_vec(),
            });
            at = cut;
        }
        names.push(t.name.clone());
    }
    Ok((names, requests, bytes))
}

/// Sends every request, one client thread per tenant (each tenant's in
/// order, as one shipper would); the answers.
fn send_all(
    addr: SocketAddr,
    names: &[String],
    tokens: &[String],
    requests: &[Request],
) -> anyhow::Result<Vec<serde_json::Value>> {
    std::thread::scope(|scope| {
        let senders: Vec<_> = (0..names.len())
            .map(|t| {
                scope.spawn(move || {
                    requests
                        .iter()
                        .filter(|r| r.tenant == t)
                        .map(|r| post(addr, &names[t], &tokens[t], &r.body))
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::new();
        for s in senders {
            all.extend(
                s.join()
                    .map_err(|_| anyhow::anyhow!("a sender panicked"))??,
            );
        }
        Ok(all)
    })
}

fn post(
    addr: SocketAddr,
    tenant: &str,
    token: &str,
    body: &[u8],
) -> anyhow::Result<serde_json::Value> {
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "POST /api/v1/tenants/{tenant}/ingest HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    stream.write_all(body)?;
    crate::http::answer(stream, 202)
}

/// A server in this process, on a free port, with workers beside it when
/// it publishes to a queue.
struct Served {
    runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics: Vec<Arc<turncoat_server::Metrics>>,
}

impl Served {
    fn start(
        store: StoreLocation,
        queue: Option<turncoat_queue::QueueUrl>,
        workers: usize,
    ) -> anyhow::Result<Served> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let until_stopped = move || {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|s| *s).await;
            }
        };
        let (addr, tasks, metrics) = runtime.block_on(async {
            let mut server = turncoat_server::Server::bind(
                "127.0.0.1:0".parse()?,
                store.clone(),
                None,
                turncoat_server::IngestLimits::default(),
            )
            .await?;
            let mut tasks = Vec::new();
            let mut metrics = Vec::new();
            if let Some(url) = &queue {
                server = server.with_queue(turncoat_queue::Queue::connect(url).await?);
                for i in 0..workers {
                    let worker = turncoat_server::worker::Worker::new(
                        store.clone(),
                        turncoat_queue::Queue::connect(url).await?,
                        turncoat_server::worker::WorkerOptions {
                            slots: 1,
                            name: format!("bench-{i}"),
                            heartbeat: Duration::from_secs(10),
                        },
                    )?;
                    metrics.push(worker.metrics());
                    tasks.push(tokio::spawn(worker.run(until_stopped())));
                }
            }
            let addr = server.local_addr();
            let serving = server.run(until_stopped());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serving.await {
                    eprintln!("server: {e}");
                }
            }));
            Ok::<_, anyhow::Error>((addr, tasks, metrics))
        })?;
        Ok(Served {
            runtime,
            addr,
            stop,
            tasks,
            metrics,
        })
    }

    /// Waits until every batch is committed; the events they stored.
    fn wait_for(&self, url: &turncoat_queue::QueueUrl, ids: &[String]) -> anyhow::Result<u64> {
        self.runtime.block_on(async {
            let queue = turncoat_queue::Queue::connect(url).await?;
            let mut events = 0;
            for id in ids {
                loop {
                    let progress = queue
                        .batch(id)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("no batch {id}"))?;
                    if progress.chunks.iter().all(Option::is_some) {
                        events += progress
                            .chunks
                            .iter()
                            .flatten()
                            .map(|c| c["events"].as_u64().unwrap_or(0))
                            .sum::<u64>();
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok(events)
        })
    }

    /// Seconds the workers spent committing chunks (parsing, matching,
    /// writing), summed over them.
    fn commit_seconds(&self) -> f64 {
        self.metrics
            .iter()
            .map(|m| {
                m.text()
                    .lines()
                    .find_map(|l| l.strip_prefix("turncoat_ingest_commit_seconds_sum "))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
            })
            .sum()
    }

    fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        self.runtime.block_on(async {
            for task in self.tasks {
                let _ = task.await;
            }
        });
        Ok(())
    }
}
