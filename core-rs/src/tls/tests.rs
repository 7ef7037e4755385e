use super::*;

fn config(cert: &str, key: &str) -> TlsConfig {
    TlsConfig {
        certificates: vec![CertificateConfig {
            cert: cert.to_owned(),
            key: key.to_owned(),
            names: vec![],
        }],
        strict_sni: false,
        min_version: "1.2".to_owned(),
        handshake_timeout_ms: 1000,
        client_auth: None,
    }
}

fn error(config: &TlsConfig) -> ConfigError {
    match TlsSettings::build(config, "listeners[1].tls", true, None) {
        Ok(_) => panic!("expected a config error"),
        Err(e) => e,
    }
}

#[test]
fn a_missing_certificate_file_is_named() {
    let e = error(&config("/nonexistent/site.pem", "/nonexistent/site.key"));
    assert_eq!(e.path, "listeners[1].tls.certificates[0].cert");
    assert!(e.message.contains("/nonexistent/site.pem"), "{e}");
}

#[test]
fn a_file_without_pem_blocks_is_named_and_not_quoted() {
    let dir = std::env::temp_dir().join(format!("pygate-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("not-a-cert.pem");
    std::fs::write(&path, "SECRET-LOOKING-CONTENT\n").unwrap();
    let path = path.to_str().unwrap();
    let e = error(&config(path, path));
    assert_eq!(e.path, "listeners[1].tls.certificates[0].cert");
    assert!(e.message.contains("no certificate in"), "{e}");
    assert!(!e.message.contains("SECRET-LOOKING-CONTENT"), "{e}");
}

#[test]
fn no_certificates_and_bad_versions_are_refused() {
    let mut c = config("a", "b");
    c.certificates.clear();
    assert_eq!(error(&c).path, "listeners[1].tls.certificates");
    let mut c = config("a", "b");
    c.min_version = "1.0".to_owned();
    // Files are read first; the version check needs none.
    c.certificates.clear();
    assert_eq!(error(&c).path, "listeners[1].tls.certificates");
}
