//! The PostgreSQL test harness itself (tests/common/postgres.rs): a server is there, and it
//! is PostgreSQL. No client crate: a raw socket and the protocol's first message.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::postgres::{ca_file, host_port, test_url};

#[test]
fn url_names_a_postgres_server() {
    let url = test_url();
    assert_eq!(test_url(), url, "one server per test binary");
    let (host, port) = host_port(&url);
    let mut sock = TcpStream::connect((host.as_str(), port)).unwrap_or_else(|e| panic!("connect {host}:{port}: {e}"));
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // SSLRequest: length 8, code 80877103. A PostgreSQL server answers one byte: 'S' (TLS
    // offered) or 'N'.
    sock.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).unwrap();
    let mut answer = [0u8; 1];
    sock.read_exact(&mut answer).unwrap();
    assert!(matches!(&answer, b"S" | b"N"), "not a PostgreSQL answer: {answer:?}");
    // The harness's own server has TLS on; a server from the environment may not.
    if std::env::var(common::postgres::URL_VAR).is_err() {
        assert_eq!(&answer, b"S", "the harness server offers TLS");
    }
}

#[test]
fn ca_file_is_a_pem_certificate() {
    let url = test_url();
    match ca_file() {
        Some(path) => {
            let pem = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
            assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{path} is not a PEM certificate");
        }
        None => assert!(std::env::var(common::postgres::URL_VAR).is_ok(), "the harness server ({url}) has a CA"),
    }
}

#[test]
fn host_port_parses_libpq_urls() {
    assert_eq!(host_port("postgres://u:p@127.0.0.1:5433/db"), ("127.0.0.1".into(), 5433));
    assert_eq!(host_port("postgresql://localhost/db?sslmode=require"), ("localhost".into(), 5432));
    assert_eq!(host_port("postgres://u@[::1]:6000/db"), ("::1".into(), 6000));
    assert_eq!(host_port("postgres://h:7000"), ("h".into(), 7000));
}
