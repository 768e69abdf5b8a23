//! `integrations-fakes`: serve the fake upstreams standalone, so a person can try the whole service
//! offline and benchmarks have an upstream to hit.

use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Parser;
use integration_testkit::FakeServer;

/// Serve fake Jira, GitHub and Slack APIs on loopback addresses and print their base URLs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address of the fake Jira (e.g. 127.0.0.1:9101).
    #[arg(long, env = "FAKE_JIRA_ADDR")]
    jira: Option<SocketAddr>,
    /// Address of the fake GitHub (e.g. 127.0.0.1:9102).
    #[arg(long, env = "FAKE_GITHUB_ADDR")]
    github: Option<SocketAddr>,
    /// Address of the fake Slack (e.g. 127.0.0.1:9103).
    #[arg(long, env = "FAKE_SLACK_ADDR")]
    slack: Option<SocketAddr>,
    /// Core rate limit per hour of the fake GitHub (GitHub's own is 5000; raise it for load tests).
    #[arg(long, env = "FAKE_GITHUB_RATE_LIMIT", default_value_t = 5000)]
    github_rate_limit: u64,
    /// Public channels added to the fake Slack's demo workspace (`#bench-00000`, ...), for a channel
    /// directory the size of a large workspace's. 0 (the default) adds none.
    #[arg(long, env = "FAKE_SLACK_CHANNELS", default_value_t = 0)]
    slack_channels: u32,
    /// Hold every answer back this long (milliseconds): loopback answers in microseconds, a real
    /// upstream in tens to hundreds of milliseconds. 0 (the default) answers at once.
    #[arg(long, env = "FAKE_LATENCY_MS", default_value_t = 0)]
    latency_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut servers: Vec<(&str, FakeServer)> = Vec::new();
    let fakes: [(&str, Option<SocketAddr>); 3] =
        [("jira", args.jira), ("github", args.github), ("slack", args.slack)];
    for (name, addr) in fakes {
        let Some(addr) = addr else { continue };
        let router = match name {
            "github" => {
                let github = integration_testkit::github::FakeGitHub::demo();
                github.set_rate_limit("core", args.github_rate_limit, 3600);
                Some(integration_testkit::github::router(github))
            }
            "slack" => {
                let slack = integration_testkit::slack::FakeSlack::demo();
                for i in 0..args.slack_channels {
                    slack.add_channel(&format!("bench-{i:05}"), false);
                }
                Some(integration_testkit::slack::router(slack))
            }
            _ => integration_testkit::fake_router(name),
        };
        let Some(router) = router else {
            eprintln!("{name}: no fake of this provider is built yet, skipped");
            continue;
        };
        let server =
            FakeServer::start_on(addr, router).await.with_context(|| format!("binding {name} on {addr}"))?;
        if args.latency_ms > 0 {
            let delay = std::time::Duration::from_millis(args.latency_ms);
            server.faults().push(integration_testkit::Fault::delay(delay).times(u32::MAX));
        }
        servers.push((name, server));
    }
    if servers.is_empty() {
        anyhow::bail!("nothing to serve: give at least one of --jira, --github, --slack");
    }
    for (name, server) in &servers {
        println!("{name}={}", server.base_url());
    }
    tokio::signal::ctrl_c().await.context("waiting for ctrl-c")?;
    Ok(())
}
