//! Crash safety: `kill -9` the server while clients write with `_bulk`;
//! after a restart every acknowledged document is there.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::Method;
use support::{Deployment, TestResult};

#[test]
fn acknowledged_bulk_writes_survive_kill_9() -> TestResult {
    let deployment = Deployment::new()?;
    let server = deployment.start()?;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|scope| {
        for writer in 0..2 {
            let (server, acknowledged, stop) = (&server, acknowledged.clone(), stop.clone());
            scope.spawn(move || {
                let mut batch = 0;
                while !stop.load(Ordering::Relaxed) {
                    batch += 1;
                    let ids: Vec<String> = (0..50).map(|i| format!("w{writer}-b{batch}-{i}")).collect();
                    let body: String = ids
                        .iter()
                        .map(|id| {
                            format!("{{\"index\":{{\"_index\":\"crash\",\"_id\":\"{id}\"}}}}\n{{\"v\":1}}\n")
                        })
                        .collect();
                    match server.request(Method::POST, "/_bulk", &body) {
                        Ok(reply) if reply.status == 200 && reply.json()["errors"] == false => {
                            if let Ok(mut acked) = acknowledged.lock() {
                                acked.extend(ids);
                            }
                        }
                        _ => break, // the server is gone: stop writing
                    }
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        server.kill_hard();
        stop.store(true, Ordering::Relaxed);
    });
    let acked = acknowledged.lock().map(|a| a.clone()).unwrap_or_default();
    assert!(acked.len() >= 100, "writers got acknowledgements before the crash ({})", acked.len());

    let restarted = deployment.start()?;
    let count = restarted.request(Method::POST, "/crash/_count", "")?.json()["count"].as_u64().unwrap_or(0);
    assert!(count as usize >= acked.len(), "{count} documents after restart, {} acknowledged", acked.len());
    for id in acked.iter().step_by(37) {
        let reply = restarted.get(&format!("/crash/_doc/{id}"))?;
        assert_eq!(reply.status, 200, "acknowledged {id} lost: {reply:?}");
    }
    Ok(())
}
