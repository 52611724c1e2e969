//! The README's demo. (In progress.)

use tokio_util::sync::CancellationToken;

pub async fn run(_shutdown: CancellationToken, _duration_s: Option<u64>) -> anyhow::Result<()> {
    anyhow::bail!("demo not implemented yet")
}
