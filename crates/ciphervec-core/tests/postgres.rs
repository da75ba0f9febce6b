//! The PostgreSQL store against a real server: the storage and sharing conformance checks,
//! the multi-client scenarios of `tests/common/sharing.rs` (each client with a store, a pool
//! and a runtime of its own, as separate processes have), the layout version, what the
//! database holds, and failures. The server comes from `common::postgres` (the one `npm test`
//! starts, or one of this test binary's own).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ciphervec_core::test_util::seals_under_data_key;
use ciphervec_core::{Client, Index, Metric, NewItem, PostgresOptions, PostgresStorage, Storage};
use common::sharing;

/// A table prefix no other test (or run) uses.
fn fresh_table() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("t{}_{}_{}", std::process::id(), nanos, N.fetch_add(1, Ordering::Relaxed))
}

fn options(table: &str) -> PostgresOptions {
    let mut o = PostgresOptions::new(common::postgres::test_url());
    o.table = table.to_string();
    o.poll_interval = Duration::from_millis(200);
    o
}

fn store(table: &str) -> Arc<PostgresStorage> {
    Arc::new(PostgresStorage::open(options(table)).unwrap())
}

#[test]
fn postgres_storage_conforms() {
    ciphervec_core::test_util::storage_conformance(&*store(&fresh_table()));
    ciphervec_core::test_util::sharing_conformance(&store(&fresh_table()));
}

#[test]
fn clients_with_their_own_connections_follow_each_other() {
    let table = fresh_table();
    let open = || Client::new(store(&table), 2).unwrap();
    sharing::all(&open, "pg", seals_under_data_key);
}

#[test]
fn the_database_holds_no_plaintext() {
    let table = fresh_table();
    let pg = store(&table);
    let client = Client::new(pg.clone(), 2).unwrap();
    let index = client.create_index("secret-index-name", &[5; 32], None, Metric::Cosine).unwrap();
    let items: Vec<NewItem> = (0..300)
        .map(|i| NewItem {
            id: format!("secret-id-{i}"),
            vector: vec![0.25 + i as f32, 1.5, -2.0, 3.0],
            metadata: Some(ciphervec_core::Meta::from(&serde_json::json!({ "tenant": "secret-tenant", "n": i }))),
            contents: Some(ciphervec_core::Contents::Text(format!("secret contents {i}"))),
        })
        .collect();
    index.upsert(items).unwrap();
    index.delete(&["secret-id-3".to_string()]).unwrap();
    index.compact().unwrap();
    index
        .upsert(vec![NewItem {
            id: "secret-id-late".into(),
            vector: vec![9.0, 9.0, 9.0, 9.0],
            metadata: None,
            contents: Some(ciphervec_core::Contents::Text("secret late".into())),
        }])
        .unwrap();
    index.delete(&["secret-id-4".to_string()]).unwrap();
    let rows = pg.dump().unwrap();
    assert!(rows.len() > 5, "{} rows", rows.len());
    let text: String = rows.iter().map(|(t, r)| format!("{t} {r}\n")).collect();
    for needle in ["secret", "tenant", "index-name"] {
        assert!(!text.contains(needle), "'{needle}' appears in the tables");
    }
    // Bytes too (rows print bytea as hex): the names, and the vectors' float32 bytes.
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    for needle in [hex(b"secret"), hex(b"tenant"), hex(&1.5f32.to_le_bytes()), hex(&9.0f32.to_le_bytes())] {
        assert!(!text.contains(&needle), "bytes {needle} appear in the tables");
    }
    client.close();
}

#[test]
fn a_newer_layout_is_refused_and_bad_options_are_typed_errors() {
    let table = fresh_table();
    let pg = store(&table);
    pg.execute(&format!("UPDATE {table}_schema SET version = 99")).unwrap();
    pg.close();
    let err = PostgresStorage::open(options(&table)).unwrap_err();
    assert_eq!(err.code(), "ERR_UNSUPPORTED_FORMAT", "{err}");
    for bad in ["", "Upper", "1abc", "a-b", &"x".repeat(41)] {
        let err = PostgresStorage::open(options(bad)).unwrap_err();
        assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "table '{bad}': {err}");
    }
    let mut o = options(&fresh_table());
    o.pool_size = 0;
    assert_eq!(PostgresStorage::open(o).unwrap_err().code(), "ERR_INVALID_ARGUMENT");
}

#[test]
fn an_unreachable_database_fails_with_err_unavailable_and_no_password() {
    // A port nothing listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut o = PostgresOptions::new(format!("postgres://u:hunter2@127.0.0.1:{port}/db?sslmode=disable"));
    o.connect_timeout = Duration::from_secs(2);
    let err = PostgresStorage::open(o).unwrap_err();
    assert_eq!(err.code(), "ERR_UNAVAILABLE", "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// libpq's sslmode, against the harness's server (TLS with a certificate for localhost and
/// 127.0.0.1 signed by its own CA; plain connections allowed too).
#[test]
fn sslmodes_encrypt_and_verify_as_libpq_does() {
    let Some(ca) = common::postgres::ca_file() else {
        panic!("the test server has no CA file: set CIPHERVEC_TEST_POSTGRES_CA with CIPHERVEC_TEST_POSTGRES_URL");
    };
    let base = common::postgres::test_url();
    let (host, port) = common::postgres::host_port(&base);
    let (user_pw, db) = {
        let rest = base.split("://").nth(1).unwrap();
        let (creds, tail) = rest.split_once('@').unwrap();
        (creds.to_string(), tail.split_once('/').unwrap().1.split('?').next().unwrap().to_string())
    };
    let (user, password) = user_pw.split_once(':').unwrap();
    let url = |host: &str, query: &str| format!("postgres://{user_pw}@{host}:{port}/{db}?{query}");
    let ssl_in_use = |url: String| -> ciphervec_core::Result<String> {
        let mut o = PostgresOptions::new(url);
        o.table = fresh_table();
        o.connect_timeout = Duration::from_secs(10);
        let pg = PostgresStorage::open(o)?;
        let used = pg.query_text("SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()")?;
        pg.close();
        Ok(used.concat())
    };
    let ca_q = format!("sslrootcert={}", ca.replace('/', "%2F"));
    assert_eq!(ssl_in_use(url(&host, "sslmode=disable")).unwrap(), "false");
    assert_eq!(ssl_in_use(url(&host, "sslmode=prefer")).unwrap(), "true", "prefer takes TLS when offered");
    assert_eq!(ssl_in_use(url(&host, "sslmode=require")).unwrap(), "true");
    assert_eq!(ssl_in_use(url("localhost", &format!("sslmode=verify-full&{ca_q}"))).unwrap(), "true");
    assert_eq!(ssl_in_use(url("127.0.0.1", &format!("sslmode=verify-full&{ca_q}"))).unwrap(), "true", "IP SAN");
    // The certificate is not for this name: verify-full refuses, verify-ca (chain only) accepts.
    let kv = |mode: &str| {
        format!("host=wrong.example hostaddr=127.0.0.1 port={port} user={user} password={password} dbname={db} sslmode={mode} sslrootcert={ca}")
    };
    let err = ssl_in_use(kv("verify-full")).unwrap_err();
    assert_eq!(err.code(), "ERR_UNAVAILABLE", "{err}");
    assert!(err.to_string().contains("certificate"), "says why: {err}");
    assert!(!err.to_string().contains(password), "{err}");
    assert_eq!(ssl_in_use(kv("verify-ca")).unwrap(), "true");
    // require with a root certificate given verifies the chain (libpq's rule); the system
    // roots do not know this CA.
    let err = ssl_in_use(url(&host, "sslmode=verify-full&sslrootcert=system")).unwrap_err();
    assert!(matches!(err.code(), "ERR_UNAVAILABLE" | "ERR_INVALID_ARGUMENT"), "{err}");
    let other_ca = std::env::temp_dir().join(format!("ciphervec-not-a-ca-{}.pem", std::process::id()));
    std::fs::write(&other_ca, "not a certificate").unwrap();
    let err = ssl_in_use(url(&host, &format!("sslmode=require&sslrootcert={}", other_ca.display()))).unwrap_err();
    assert_eq!(err.code(), "ERR_INVALID_ARGUMENT", "{err}");
    std::fs::remove_file(other_ca).unwrap();
}

/// Processes sharing a database share its catalog: an index one creates is listed by another
/// with the same client key, without loading it; another client key is refused.
#[test]
fn processes_with_the_client_key_list_each_others_indexes() {
    let table = fresh_table();
    let ck = ciphervec_core::random_key();
    let a = Client::open_with_key(store(&table), Some(1), &ck).unwrap();
    let b = Client::open_with_key(store(&table), Some(1), &ck).unwrap();
    a.create_index("made-by-a", &ciphervec_core::random_key(), Some(2), Metric::Euclidean).unwrap();
    assert_eq!(b.list_indexes().unwrap(), vec!["made-by-a".to_string()]);
    assert_eq!(
        Client::open_with_key(store(&table), Some(1), &ciphervec_core::random_key()).err().unwrap().code(),
        "ERR_WRONG_KEY"
    );
    a.close();
    b.close();
}

/// A PostgreSQL store backed up to a disk store (the portable copy of a shared store), while
/// another client (as another process would) upserts batches, three of them while the export
/// waits at its first batch: the copy opens as a disk store, each index loads with its key,
/// and each batch is in it wholly or not at all.
#[test]
fn a_backup_of_a_postgres_store_loads_as_a_disk_store() {
    use std::sync::atomic::AtomicBool;
    let table = fresh_table();
    let done = Arc::new(AtomicUsize::new(0));
    let paused = common::PausedExport { inner: store(&table), done: done.clone(), by: 3 };
    let (a, b) = (Client::new(Arc::new(paused), 2).unwrap(), Client::new(store(&table), 2).unwrap());
    let key = [21u8; 32];
    let item = |id: String, n: usize| NewItem {
        id,
        vector: vec![n as f32, 1.0, -1.0, 0.5],
        metadata: Some(ciphervec_core::Meta::from(&serde_json::json!({ "batch": n }))),
        contents: None,
    };
    let index = a.create_index("pg-backup", &key, Some(4), Metric::Euclidean).unwrap();
    index.upsert((0..400).map(|i| item(format!("base-{i}"), 0)).collect()).unwrap();
    index.compact().unwrap();
    let other = a.create_index("pg-other", &[22; 32], Some(4), Metric::Cosine).unwrap();
    other.upsert((0..50).map(|i| item(format!("o-{i}"), i)).collect()).unwrap();
    let writer_index = b.load_index("pg-backup", &key).unwrap();
    let stop = AtomicBool::new(false);
    let dir = std::env::temp_dir().join(format!("ciphervec-pg-backup-{table}"));
    let (stats, started, returned) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut n = 0;
            while !stop.load(Ordering::Acquire) {
                writer_index.upsert((0..10).map(|j| item(format!("b{n}-{j}"), n)).collect()).unwrap();
                n += 1;
                done.store(n, Ordering::Release);
            }
        });
        while done.load(Ordering::Acquire) < 3 {
            std::thread::yield_now();
        }
        let started = done.load(Ordering::Acquire);
        let stats = a.backup(&dir);
        let returned = done.load(Ordering::Acquire);
        stop.store(true, Ordering::Release);
        writer.join().unwrap();
        (stats.unwrap(), started, returned)
    });
    assert_eq!(stats.spaces, 2, "{stats:?}");
    let total = done.load(Ordering::Acquire);
    let copy = Client::new(Arc::new(ciphervec_core::DiskStorage::open(&dir).unwrap()), 2).unwrap();
    let loaded = copy.load_index("pg-backup", &key).unwrap();
    let mut k = 0;
    for n in 0..total {
        let ids: Vec<String> = (0..10).map(|j| format!("b{n}-{j}")).collect();
        let got = loaded.get(&ids, ciphervec_core::Include::GET_DEFAULT).unwrap().len();
        assert!(got == 0 || got == 10, "batch {n}: {got} of its 10 items");
        assert!(got == 0 || k == n, "batch {n} is in the backup but an earlier one is not");
        k += usize::from(got == 10);
    }
    assert!(started <= k && k + 2 <= returned, "{k} batches: not of a moment while it ran ({started}..{returned})");
    assert_eq!(loaded.count().unwrap(), 400 + k * 10);
    let other_copy = copy.load_index("pg-other", &[22; 32]).unwrap();
    let mut ids = other.list_ids().unwrap();
    ids.sort();
    let view = |i: &Index| -> Vec<(String, Option<Vec<f32>>)> {
        i.get(&ids, ciphervec_core::Include::GET_DEFAULT).unwrap().into_iter().map(|v| (v.id, v.vector)).collect()
    };
    assert_eq!(view(&other_copy), view(&other));
    copy.close();
    a.close();
    b.close();
    std::fs::remove_dir_all(&dir).unwrap();
}
