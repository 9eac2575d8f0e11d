//! Graceful shutdown: every task of a server watches one `watch` channel that turns true
//! when the server stops.

use tokio::sync::watch;

/// Waits until shutdown is signalled (or the server is gone).
pub(crate) async fn shutdown_signalled(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
