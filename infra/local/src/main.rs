//! `cargo run --release -p kefu-local`: kefu on 127.0.0.1 with embedded storage.

use kefu::consumer::shutdown::shutdown;
use kefu::{config, telemetry};
use kefu_local::{Settings, run};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init(&config::or("KEFU_LOG", "info"), false);
    let settings = Settings::from_env()?;
    let (trigger, stop) = shutdown();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        trigger.trigger();
    });
    run(settings, stop, None).await
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
