//! The local runner's HTTP server and data dir as an attacker on the network or another
//! user of the machine meets them.

mod common;

use common::{free_addr, start};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn given_a_client_that_never_finishes_its_headers_when_connected_then_the_runner_closes_the_connection()
 {
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path(), &[]);

    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(40)))
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: kefu\r\nX-Slow: ")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest).is_ok();
    let held = started.elapsed();
    runner.kill().unwrap();
    runner.wait().unwrap();

    assert!(closed, "the connection was still open after {held:?}");
    assert!(held < Duration::from_secs(30), "held for {held:?}");
}

#[cfg(unix)]
#[test]
fn given_a_fresh_data_dir_when_the_runner_starts_then_its_secrets_and_database_are_readable_only_by_the_owner()
 {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let mut runner = start(addr, data.path(), &[]);
    runner.kill().unwrap();
    runner.wait().unwrap();

    for name in ["token-secret", "id-secret", "kefu.db"] {
        let mode = std::fs::metadata(data.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name} is {:o}", mode & 0o777);
    }
}
