//! The listener: `serve`'s own accept loop over hyper http1, with the
//! connection limits ([`ServeLimits`]): a header-read timeout (also bounding
//! idle keep-alive), a write timeout (a client that stops reading is cut
//! off), a total cap (when full, the oldest connection that has not sent a
//! whole head gives way) and a per-address cap (IPv6 per /64).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ConnectInfo;

use super::{AppState, router};

/// Connection limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A client must send a request's whole head within this; an idle
    /// keep-alive connection is closed after it too (hyper's timer starts
    /// whenever the connection waits for a head).
    pub header_read_timeout: std::time::Duration,
    /// Connections open at once; more are closed as soon as accepted.
    pub max_connections: usize,
    /// Connections open at once from one client address.
    pub max_connections_per_address: usize,
    /// An authenticated request's body must arrive within this (enforced
    /// by the authentication middleware, through [`AppState::body_timeout`]).
    pub body_timeout: std::time::Duration,
    /// A write to a client that makes no progress for this long closes the
    /// connection (a client that never reads its answers).
    pub write_timeout: std::time::Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: std::time::Duration::from_secs(10),
            max_connections: 1024,
            max_connections_per_address: 256,
            body_timeout: std::time::Duration::from_secs(60),
            write_timeout: std::time::Duration::from_secs(30),
        }
    }
}

/// The address a connection counts against: an IPv4 address, or an IPv6
/// client's /64 (one host holds a whole /64).
fn client_network(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mut octets = v6.octets();
            octets[8..].fill(0);
            std::net::IpAddr::V6(octets.into())
        }
        other => other,
    }
}

/// Serves until `shutdown` resolves, then lets the requests in flight finish
/// (for at most 30 s). Each connection needs a permit of the connection cap
/// and of its address's cap: a connection over either is closed at once,
/// so slow or idle clients cannot hold every connection, and the header
/// timeout frees the ones they hold.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower_service::Service as _;

    /// One connection's share of its address's cap, given back when dropped.
    struct AddressSlot {
        counts: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
        ip: std::net::IpAddr,
    }
    impl Drop for AddressSlot {
        fn drop(&mut self) {
            let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = counts.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    counts.remove(&self.ip);
                }
            }
        }
    }

    /// What the accept loop knows of an open connection: whether it has
    /// sent a whole request head yet, and how to close it.
    struct OpenConnection {
        served: Arc<AtomicBool>,
        abort: tokio::task::AbortHandle,
    }
    use std::sync::atomic::{AtomicBool, Ordering};

    let app = router(state);
    // Open connections, oldest first (ids grow).
    let idle: Arc<std::sync::Mutex<std::collections::BTreeMap<u64, OpenConnection>>> = Arc::default();
    let mut next_connection = 0u64;
    let connections = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let per_address: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>> =
        Arc::default();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout).keep_alive(true);
    // Refusals are logged at most every 10 s, with a count: a flood must not
    // become a log flood.
    let mut refused = 0u64;
    let mut refused_logged: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off, do not spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let mut permit = connections.clone().try_acquire_owned().ok();
        if permit.is_none() {
            // Full: the oldest connection that has not yet sent a whole
            // request head gives way (a client that only opens connections
            // must not hold every slot for a header timeout each).
            let victim = {
                let open = idle.lock().unwrap_or_else(|p| p.into_inner());
                open.iter()
                    .find(|(_, c)| !c.served.load(Ordering::Relaxed))
                    .map(|(id, c)| (*id, c.abort.clone()))
            };
            if let Some((id, abort)) = victim {
                abort.abort();
                idle.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                let wait = tokio::time::timeout(
                    std::time::Duration::from_millis(100),
                    connections.clone().acquire_owned(),
                );
                permit = wait.await.ok().and_then(Result::ok);
            }
        }
        let slot = permit.as_ref().and_then(|_| {
            let mut counts = per_address.lock().unwrap_or_else(|p| p.into_inner());
            let ip = client_network(remote.ip());
            let count = counts.entry(ip).or_insert(0);
            (*count < limits.max_connections_per_address).then(|| {
                *count += 1;
                AddressSlot { counts: per_address.clone(), ip }
            })
        });
        let (Some(permit), Some(slot)) = (permit, slot) else {
            drop(stream);
            refused += 1;
            crate::metrics::backpressure(crate::metrics::Backpressure::Connections);
            if refused_logged.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(10)) {
                tracing::warn!(
                    refused,
                    max_connections = limits.max_connections,
                    max_connections_per_address = limits.max_connections_per_address,
                    "connections refused over the connection caps (last from {remote})"
                );
                refused_logged = Some(Instant::now());
                refused = 0;
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let served = Arc::new(AtomicBool::new(false));
        let first_head = served.clone();
        let service =
            hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                first_head.store(true, Ordering::Relaxed);
                request.extensions_mut().insert(ConnectInfo(remote));
                app.clone().call(request)
            });
        // A client that stops reading its answers (say, thousands of
        // pipelined requests never read) is cut off once a write has made
        // no progress for the write timeout.
        let mut io = tokio_io_timeout::TimeoutStream::new(stream);
        io.set_write_timeout(Some(limits.write_timeout));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(Box::pin(io)), service));
        let id = next_connection;
        next_connection += 1;
        let open = idle.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%remote, "connection closed: {e}");
            }
            open.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
            drop((permit, slot));
        });
        idle.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, OpenConnection { served, abort: task.abort_handle() });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open 30 s after shutdown began; closing them");
    }
    Ok(())
}
