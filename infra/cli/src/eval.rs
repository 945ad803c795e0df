//! `kefu faq eval` (placeholder until the evaluator lands).

/// Arguments of `kefu faq eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {}

/// Not built yet.
pub fn run(_: EvalArgs) -> anyhow::Result<()> {
    anyhow::bail!("not built yet")
}
