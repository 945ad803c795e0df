//! `cargo bench -p kefu-tests --bench email`: prints a table of what a large HTML-only mail
//! costs — parsing it (`kefu::channels::email::parse`: MIME, charset, HTML reduced to text)
//! and taking it through the email ingress over the embedded store — for 1, 2.5 and 10 MB
//! of HTML with a `<style>` in every section, and how long the async runtime (two workers,
//! as on a 2-core laptop) stalls while three 10 MB mails are received at once.

use kefu::adapters::embedded::{EmbeddedStore, INBOUND};
use kefu::channels::email::{Delivery, EmailConfig, EmailIngress, parse};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const MB: usize = 1_000_000;

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let data = tempfile::tempdir()?;
    let store = EmbeddedStore::open(data.path())?;
    let ingress = Arc::new(EmailIngress::new(
        Arc::new(store.queue(INBOUND)),
        Arc::new(store.blobs()),
        Arc::new(store.idempotency()),
        EmailConfig::new("support@shop.example", None)?,
    ));

    println!("\n| HTML | parse | ingress | text chars |\n|---|---|---|---|");
    for (n, size) in [MB, 5 * MB / 2, 10 * MB].into_iter().enumerate() {
        let raw = html_mail(n, size);
        let started = Instant::now();
        let mail = parse(&raw)?;
        let parsed = started.elapsed();
        let started = Instant::now();
        runtime.block_on(ingress.receive(raw, &delivery(n)))?;
        let received = started.elapsed();
        println!(
            "| {:.1} MB | {} | {} | {} |",
            size as f64 / MB as f64,
            ms(parsed),
            ms(received),
            mail.text.chars().count()
        );
    }

    // Three at once, with a 10 ms ticker on the same runtime: its worst lateness is how
    // long every other task (an HTTP request, a queue consumer) would have waited.
    let (wall, stall) = runtime.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = tokio::spawn({
            let stop = stop.clone();
            async move {
                let mut worst = Duration::ZERO;
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    worst = worst.max(started.elapsed().saturating_sub(Duration::from_millis(10)));
                }
                worst
            }
        });
        let started = Instant::now();
        let mails: Vec<_> = (10..13)
            .map(|n| {
                let ingress = ingress.clone();
                tokio::spawn(
                    async move { ingress.receive(html_mail(n, 10 * MB), &delivery(n)).await },
                )
            })
            .collect();
        for mail in mails {
            mail.await??;
        }
        let wall = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        anyhow::Ok((wall, ticker.await?))
    })?;
    println!(
        "| 3 × 10 MB at once (2 workers) | {} wall | longest runtime stall {} | |",
        ms(wall),
        ms(stall)
    );
    Ok(())
}

fn ms(duration: Duration) -> String {
    format!("{:.0} ms", duration.as_secs_f64() * 1000.0)
}

fn delivery(n: usize) -> Delivery {
    let pass = Some("PASS".to_owned());
    Delivery {
        platform_id: format!("bench-{n}"),
        recipients: vec!["support@shop.example".into()],
        spam: pass.clone(),
        virus: pass.clone(),
        spf: pass.clone(),
        dkim: pass.clone(),
        dmarc: pass,
        received_at: 1_736_400_000_000,
    }
}

/// An HTML-only newsletter of about `bytes` bytes with a `<style>` in every section.
fn html_mail(n: usize, bytes: usize) -> Vec<u8> {
    let mut html = String::with_capacity(bytes + 4096);
    html.push_str("<html><head><title>News</title></head><body>\r\n");
    let words = "Lorem ipsum dolor sit amet &amp; consectetur adipiscing elit. ".repeat(30);
    let mut section = 0;
    while html.len() < bytes {
        section += 1;
        html.push_str(&format!(
            "<div><style>.s{section} {{ color: #333; }}</style><p class=s{section}>{words}</p></div>\r\n"
        ));
    }
    html.push_str("</body></html>\r\n");
    let head = format!(
        "From: Li Wei <li.wei@example.com>\r\nTo: support@shop.example\r\nSubject: big {n}\r\n\
         Message-ID: <big-{n}@example.com>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    );
    [head.into_bytes(), html.into_bytes()].concat()
}
