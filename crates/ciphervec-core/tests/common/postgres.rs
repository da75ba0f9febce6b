//! The PostgreSQL server the tests use (placeholder until the harness lands).
#![allow(dead_code)]

pub fn test_url() -> String {
    std::env::var("CIPHERVEC_TEST_POSTGRES_URL").expect("set CIPHERVEC_TEST_POSTGRES_URL")
}
