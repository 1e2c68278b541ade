//! `turncoat serve`: the HTTP API on the data directory.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use super::Context;
use crate::output::Exit;

#[derive(Parser, Debug)]
pub(crate) struct ServeArgs {
    /// Address and port to listen on (port 0: any free one).
    #[arg(long, default_value = "127.0.0.1:8440")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

pub(crate) fn run(args: ServeArgs, ctx: &Context) -> anyhow::Result<Exit> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TURNCOAT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let tls = args
            .tls_cert
            .zip(args.tls_key)
            .map(|(cert, key)| turncoat_server::TlsFiles { cert, key });
        let server =
            turncoat_server::Server::bind(args.listen, ctx.data.clone(), tls.as_ref()).await?;
        // The one line on stdout: where to reach it (the port, when 0 was asked).
        let scheme = if server.is_tls() { "https" } else { "http" };
        println!("listening on {scheme}://{}", server.local_addr());
        server.run(turncoat_server::shutdown_signal()).await
    })?;
    Ok(Exit::Clean)
}
