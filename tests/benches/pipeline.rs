//! `cargo bench -p kefu-tests --bench pipeline`: prints a table of
//! - end-to-end throughput and latency through the local runner (web POST → bot reply
//!   visible to the widget's long poll), and
//! - bot cold start: loading the current FAQ index from S3 (moto) for the demo FAQ and a
//!   generated 10,000-entry FAQ, with the resident memory of the loading process.
//!
//! Each cold start runs in a fresh child process (this binary re-executed) so its memory
//! is measured alone.

#[path = "../tests/support/mod.rs"]
mod support;

use kefu::adapters::aws::S3BlobStore;
use kefu::consumer::shutdown::shutdown;
use kefu::ports::BlobStore;
use kefu_bot::FaqLibrary;
use kefu_bot::faq::FaqEntry;
use kefu_bot::library::publish;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use support::moto;

const CHILD: &str = "KEFU_BENCH_LOAD_BUCKET";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if let Ok(bucket) = std::env::var(CHILD) {
        return load_in_child(&bucket).await;
    }
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let mut rows = Vec::new();
    rows.extend(end_to_end().await?);
    rows.extend(cold_starts().await?);
    println!("\n| measure | value |\n|---|---|");
    for (name, value) in rows {
        println!("| {name} | {value} |");
    }
    Ok(())
}

// ---------------------------------------------------------------- end to end

async fn end_to_end() -> anyhow::Result<Vec<(String, String)>> {
    let data = tempfile::tempdir()?;
    let mut settings = kefu_local::Settings::from_env()?;
    settings.addr = "127.0.0.1:0".parse()?;
    settings.data_dir = data.path().to_owned();
    if let Some(email) = &mut settings.email {
        email.smtp_addr = "127.0.0.1:0".parse()?;
    }
    let (trigger, stop) = shutdown();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(kefu_local::run(settings, stop, Some(ready_tx)));
    let base = format!("http://{}", ready_rx.await?);
    let http = reqwest::Client::new();
    let questions = faq_questions();

    // Latency: one customer, one message at a time.
    let session = new_session(&http, &base).await?;
    let mut latencies = Vec::new();
    for (n, q) in questions.iter().take(50).enumerate() {
        let started = Instant::now();
        let seq = post(&http, &base, &session, &format!("lat-{n}"), q).await?;
        wait_for_reply(&http, &base, &session, seq).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();

    // Throughput: 16 customers writing at once, 25 messages each.
    let (clients, per_client) = (16, 25);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (http, base, questions) = (http.clone(), base.clone(), questions.clone());
            tokio::spawn(async move {
                let session = new_session(&http, &base).await?;
                let mut last = 0;
                for n in 0..per_client {
                    let q = &questions[(c * 5 + n) % questions.len()];
                    last = post(&http, &base, &session, &format!("tp-{n}"), q).await?;
                }
                wait_for_reply(&http, &base, &session, last).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();
    trigger.trigger();
    server.await??;

    let total = clients * per_client;
    Ok(vec![
        (
            format!("end to end, {clients} customers × {per_client} messages"),
            format!(
                "{:.0} messages/s ({total} in {:.2} s)",
                total as f64 / elapsed.as_secs_f64(),
                elapsed.as_secs_f64()
            ),
        ),
        (
            "end to end latency, one message at a time (p50 / p99)".into(),
            format!(
                "{:.1} ms / {:.1} ms",
                ms(latencies[latencies.len() / 2]),
                ms(latencies[latencies.len() * 99 / 100])
            ),
        ),
    ])
}

struct Session {
    token: String,
}

async fn new_session(http: &reqwest::Client, base: &str) -> anyhow::Result<Session> {
    let body: Value = http
        .post(format!("{base}/v1/web/sessions"))
        .json(&json!({}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(Session {
        token: body["visitor_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    })
}

async fn post(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    id: &str,
    text: &str,
) -> anyhow::Result<u64> {
    let ack: Value = http
        .post(format!("{base}/v1/web/messages"))
        .bearer_auth(&session.token)
        .json(&json!({"client_message_id": id, "text": text}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    ack["seq"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("no seq in {ack}"))
}

/// Long-polls until a bot message follows `seq`.
async fn wait_for_reply(
    http: &reqwest::Client,
    base: &str,
    session: &Session,
    seq: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let page: Value = http
            .get(format!("{base}/v1/web/messages?after={seq}&wait=20"))
            .bearer_auth(&session.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let replied = page["messages"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["author"] == "bot"));
        if replied {
            return Ok(());
        }
    }
    anyhow::bail!("no reply after seq {seq}")
}

fn faq_questions() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/faq/faq.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<FaqEntry>(l).ok())
        .map(|e| e.question)
        // A question that asks for a person hands the conversation over and the bot goes
        // quiet: not what this bench measures.
        .filter(|q| !kefu_bot::wants_human(q))
        .collect()
}

// ---------------------------------------------------------------- cold start

async fn cold_starts() -> anyhow::Result<Vec<(String, String)>> {
    let demo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/faq/faq.jsonl"
    ))?;
    let mut rows = Vec::new();
    for (name, source) in [
        ("demo FAQ", demo),
        ("generated 10,000-entry FAQ", generated_faq(10_000)),
    ] {
        let (client, bucket) = moto::fresh_bucket().await;
        let blobs = S3BlobStore::new(client, &bucket, "");
        blobs.put("faq/source/faq.jsonl", source).await?;
        let published = publish(&blobs, "faq/source/faq.jsonl").await?;
        let output = std::process::Command::new(std::env::current_exe()?)
            .env(CHILD, &bucket)
            .env("KEFU_MOTO_URL", moto::moto_url())
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "child failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let child: Value = serde_json::from_slice(&output.stdout)?;
        rows.push((
            format!(
                "bot cold start, {name} ({} entries, index {:.1} MiB, built in {} ms)",
                published.entries,
                published.bytes as f64 / 1048576.0,
                published.build_ms
            ),
            format!(
                "load {} ms from S3 (moto); RSS {:.1} MiB before, {:.1} MiB after",
                child["load_ms"],
                kib_to_mib(&child["rss_before_kib"]),
                kib_to_mib(&child["rss_after_kib"])
            ),
        ));
    }
    Ok(rows)
}

/// The child: what the bot Lambda does at cold start (read `CURRENT`, download the bundle,
/// open it in RAM), timed, with the process's resident memory before and after.
async fn load_in_child(bucket: &str) -> anyhow::Result<()> {
    let rss_before = rss_kib();
    let (client, _) = (
        kefu::adapters::aws::s3_client(&moto::aws_config().await),
        (),
    );
    let blobs = S3BlobStore::new(client, bucket, "");
    let started = Instant::now();
    let library = FaqLibrary::default();
    library.load(&blobs).await?;
    let load_ms = started.elapsed().as_millis();
    anyhow::ensure!(library.current().is_some(), "nothing loaded");
    println!(
        "{}",
        json!({"load_ms": load_ms, "rss_before_kib": rss_before, "rss_after_kib": rss_kib()})
    );
    Ok(())
}

/// The synthetic FAQ of [`kefu_bot::synthetic::faq`] as a JSONL source.
fn generated_faq(n: usize) -> Vec<u8> {
    let mut out = String::new();
    for entry in kefu_bot::synthetic::faq(n) {
        out.push_str(&serde_json::to_string(&entry).expect("entries serialise"));
        out.push('\n');
    }
    out.into_bytes()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn kib_to_mib(v: &Value) -> f64 {
    v.as_f64().unwrap_or(0.0) / 1024.0
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
