//! A moto server (a local AWS API emulator) for tests of the AWS adapters.
//!
//! Include it from a test binary with `mod support;` (then `support::moto::…`) or
//! `#[path = "support/moto.rs"] mod moto;`.
//!
//! Which server:
//! - `KEFU_MOTO_URL` set (e.g. `http://127.0.0.1:5000`): that server is used as is;
//! - otherwise moto is started once per test binary on a free loopback port, with the Python
//!   of the `moto_server` found at `$KEFU_VENV/bin/moto_server`, else
//!   `<workspace>/.venv/bin/moto_server`, else on `PATH`. Without it the tests panic with the
//!   install command: they never skip silently.
//!
//! moto is run through `moto_server.py` (next to this file) rather than `moto_server`
//! itself: moto's threaded server does not make DynamoDB conditional writes atomic, and the
//! launcher serialises DynamoDB calls so that concurrency tests see AWS's guarantees. A
//! server given by `KEFU_MOTO_URL` should be started the same way
//! (`infra/scripts/moto.sh`).
//!
//! Lifetime: a test binary's statics are never dropped, so the server cannot be stopped by a
//! destructor. Instead it runs under a tiny `sh` watchdog whose stdin is a pipe held open by
//! the test binary; when the binary exits (normally, by panic or by signal) the kernel closes
//! the pipe, the watchdog reads end-of-file and kills the server. Its output goes to a log
//! file in the temp directory, shown if it fails to start.
#![allow(dead_code)]

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sqs::config::Credentials;
use kefu::adapters::aws::{DynamoStore, S3BlobStore, SqsMessageQueue, provision, s3_client};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The region every test resource lives in.
pub const REGION: &str = "us-east-1";

const INSTALL_HINT: &str = "moto's server is needed for the AWS adapter tests. Install it with\n    \
     python3 -m venv .venv && .venv/bin/pip install \"moto[server]\"\n\
     in the workspace root, or set KEFU_VENV to a venv that has it, or KEFU_MOTO_URL to a \
     running moto server.";
const START_ATTEMPTS: usize = 3;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts moto, then waits on the pipe behind its stdin; kills moto when that pipe closes.
/// `$0` = Python, `$1` = launcher script, `$2` = port, `$3` = log file.
const WATCHDOG: &str = r#"
exec 3<&0
"$0" "$1" -H 127.0.0.1 -p "$2" </dev/null >"$3" 2>&1 3<&- &
moto=$!
( read -r _ <&3; kill "$moto" 2>/dev/null ) </dev/null &
watchdog=$!
# Only the watchdog keeps the pipe; silence the shell's "Terminated" notice about moto.
exec 3<&- 2>/dev/null
wait "$moto"
kill "$watchdog" 2>/dev/null
"#;

struct Server {
    url: String,
    /// The watchdog and the write end of its pipe, kept open for the binary's lifetime.
    _process: Option<(Child, ChildStdin)>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// The moto server's base URL, starting the server on first use.
pub fn moto_url() -> &'static str {
    &SERVER.get_or_init(server).url
}

/// An SDK configuration pointed at moto: region `us-east-1`, static test credentials.
/// Build one per test: clients keep connections tied to the runtime that made them.
pub async fn aws_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(moto_url())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await
}

/// A name no other test uses (lowercase, valid for tables, queues and buckets).
pub fn unique_name() -> String {
    format!("kefu-test-{}", uuid::Uuid::new_v4().simple())
}

/// A new, empty table as `provision::create_table` makes it; returns the client and name.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&aws_config().await);
    let name = unique_name();
    provision::create_table(&client, &name)
        .await
        .expect("create a table on moto");
    (client, name)
}

/// A new, empty FIFO queue; returns the client and the queue URL.
pub async fn fresh_fifo_queue() -> (aws_sdk_sqs::Client, String) {
    let client = aws_sdk_sqs::Client::new(&aws_config().await);
    let url = provision::create_fifo_queue(&client, &format!("{}.fifo", unique_name()))
        .await
        .expect("create a FIFO queue on moto");
    (client, url)
}

/// A new, empty bucket; returns the (path-style) client and the bucket name.
pub async fn fresh_bucket() -> (aws_sdk_s3::Client, String) {
    let client = s3_client(&aws_config().await);
    let name = unique_name();
    provision::create_bucket(&client, &name)
        .await
        .expect("create a bucket on moto");
    (client, name)
}

/// A [`DynamoStore`] over a fresh table.
pub async fn fresh_store() -> DynamoStore {
    let (client, table) = fresh_table().await;
    DynamoStore::new(client, table)
}

/// An [`SqsMessageQueue`] over a fresh FIFO queue.
pub async fn fresh_queue() -> SqsMessageQueue {
    let (client, url) = fresh_fifo_queue().await;
    SqsMessageQueue::new(client, url)
}

/// An [`S3BlobStore`] over a fresh bucket, with keys under `prefix`.
pub async fn fresh_blob_store(prefix: &str) -> S3BlobStore {
    let (client, bucket) = fresh_bucket().await;
    S3BlobStore::new(client, bucket, prefix)
}

fn server() -> Server {
    if let Ok(url) = std::env::var("KEFU_MOTO_URL") {
        return Server {
            url: url.trim_end_matches('/').to_owned(),
            _process: None,
        };
    }
    let moto_server = find_moto_server().unwrap_or_else(|| panic!("{INSTALL_HINT}"));
    let python = interpreter_of(&moto_server);
    let mut failures = Vec::new();
    for _ in 0..START_ATTEMPTS {
        match start(&python) {
            Ok(server) => return server,
            Err(failure) => failures.push(failure),
        }
    }
    panic!(
        "moto ({}) did not start:\n{}\n\n{INSTALL_HINT}",
        python.display(),
        failures.join("\n---\n")
    );
}

fn find_moto_server() -> Option<PathBuf> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()?
        .to_path_buf();
    let candidates = std::env::var_os("KEFU_VENV")
        .map(PathBuf::from)
        .into_iter()
        .chain([workspace.join(".venv")])
        .map(|venv| venv.join("bin").join("moto_server"));
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("moto_server"));
    candidates.chain(on_path).find(|path| path.is_file())
}

/// The Python that runs `moto_server`: its `#!` line (pip writes the venv's interpreter
/// there), else the `python3` beside it.
fn interpreter_of(moto_server: &Path) -> PathBuf {
    let beside = moto_server.with_file_name("python3");
    let Ok(text) = std::fs::read_to_string(moto_server) else {
        return beside;
    };
    let shebang = text.lines().next().and_then(|line| line.strip_prefix("#!"));
    match shebang.map(str::trim) {
        Some(path) if !path.contains(' ') && Path::new(path).is_file() => PathBuf::from(path),
        _ => beside,
    }
}

/// The launcher that serialises DynamoDB calls (see the module docs).
fn launcher() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_server.py")
}

/// One attempt: a free port, the watchdog, and a wait until moto accepts connections.
fn start(python: &Path) -> Result<Server, String> {
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let log = std::env::temp_dir().join(format!("kefu-moto-{}-{port}.log", std::process::id()));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg(python)
        .arg(launcher())
        .arg(port.to_string())
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run sh: {e}"))?;
    let stdin = child.stdin.take().expect("stdin was piped");
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + START_TIMEOUT;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(Server {
                url: format!("http://{address}"),
                _process: Some((child, stdin)),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("exited with {status}:\n{}", log_tail(&log)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin); // closes the pipe: the watchdog stops moto
    let _ = child.wait();
    Err(format!(
        "not listening on {address} after {START_TIMEOUT:?}:\n{}",
        log_tail(&log)
    ))
}

fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
