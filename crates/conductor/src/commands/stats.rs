//! `conductor stats`: the monthly review in one command. The figures come from conductor-ops
//! (periods in the host's time zone, `TZ` honoured) over the store's SQL aggregates; this
//! module reads the arguments and prints a table or JSON. It never opens a modem port.

use crate::cli::StatsArgs;
use crate::commands::messages::open_store;
use crate::config::Config;
use anyhow::{Context, Result};
use conductor_ops::stats::{Figures, Granularity, StatsReport, StatsRequest, parse_time, report};
use conductor_store::{LatencySummary, ModemId};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

/// How a rate is defined, printed under the table so nobody has to guess.
const DEFINITIONS: &str = "success = (sent + delivered) / (sent + delivered + failed + unknown); \
     send = queued -> accepted by the network, inbound = SMSC time stamp -> stored (medians); \
     hours are local";

/// Runs `conductor stats`.
pub async fn stats(config: &Config, args: StatsArgs) -> Result<()> {
    let tz = TimeZone::system();
    let now = Timestamp::now();
    let by = Granularity::parse(&args.by)?;
    let since = args
        .since
        .as_deref()
        .map(|t| parse_time(t, &tz, now))
        .transpose()
        .context("--since")?;
    let until = args
        .until
        .as_deref()
        .map(|t| parse_time(t, &tz, now))
        .transpose()
        .context("--until")?;
    let store = open_store(config).await?;
    let report = report(
        &store,
        StatsRequest {
            by,
            since,
            until,
            modem: args.modem.map(ModemId::from),
            tz: tz.clone(),
            now,
        },
    )
    .await
    .context("cannot compute the statistics")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, &tz));
    }
    Ok(())
}

fn local(t: Timestamp, tz: &TimeZone) -> String {
    ZonedDateTime::new(t, tz.clone())
        .strftime("%Y-%m-%d %H:%M")
        .to_string()
}

fn rate(r: Option<f64>) -> String {
    r.map_or_else(|| "-".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn median(l: &LatencySummary) -> String {
    match l.median_secs {
        None => "-".to_owned(),
        Some(s) if s.fract() == 0.0 => format!("{s:.0} s"),
        Some(s) => format!("{s:.1} s"),
    }
}

fn hour(h: Option<u8>) -> String {
    h.map_or_else(|| "-".to_owned(), |h| format!("{h:02}:00"))
}

fn row(f: &Figures) -> String {
    format!(
        "{:<10} {:>8} {:>8} {:>6} {:>9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>7}\n",
        f.period,
        f.inbound,
        f.outbound,
        f.sent,
        f.delivered,
        f.failed,
        f.unknown,
        rate(f.success_rate),
        median(&f.send_latency),
        median(&f.inbound_latency),
        hour(f.busiest_hour),
    )
}

/// The report as a table, then failures by reason and the busiest hours of the whole range.
pub fn render(report: &StatsReport, tz: &TimeZone) -> String {
    let mut out = format!(
        "Statistics by {}, {} to {} ({}), {}\n\n",
        match report.by {
            Granularity::Day => "day",
            Granularity::Week => "week",
            Granularity::Month => "month",
        },
        local(report.since, tz),
        local(report.until, tz),
        report.time_zone,
        report
            .modem
            .as_ref()
            .map_or_else(|| "all modems".to_owned(), |m| format!("modem {m}")),
    );
    out.push_str(&format!(
        "{:<10} {:>8} {:>8} {:>6} {:>9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>7}\n",
        "period",
        "inbound",
        "outbound",
        "sent",
        "delivered",
        "failed",
        "unknown",
        "success",
        "send p50",
        "in p50",
        "busiest"
    ));
    for period in &report.periods {
        out.push_str(&row(period));
    }
    out.push_str(&row(&report.total));
    out.push_str(&format!("\n({DEFINITIONS})\n"));
    let total = &report.total;
    if total.failures.is_empty() {
        out.push_str("\nNo failures.\n");
    } else {
        out.push_str("\nFailures by reason:\n");
        for failure in &total.failures {
            out.push_str(&format!("{:>8}  {}\n", failure.count, failure.reason));
        }
    }
    let busiest = total.busiest_hours(3);
    if !busiest.is_empty() {
        let hours: Vec<String> = busiest
            .iter()
            .map(|(h, n)| format!("{h:02}:00-{:02}:00 ({n})", (h + 1) % 24))
            .collect();
        out.push_str(&format!("\nBusiest hours: {}\n", hours.join(", ")));
    }
    out
}
