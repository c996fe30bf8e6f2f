//! libsmbclient is loaded only when a share is used: a process that never
//! connects to one maps no samba library (it pulls in ~66 of them), one
//! that does maps it from then on. One test in its own binary, so that no
//! other test has loaded the library first.

use std::net::TcpListener;
use tasq_engine::steps::capture::dest::{Account, SmbLocation};
use tasq_engine::steps::capture::smb::SmbShare;

fn mapped(lib: &str) -> bool {
    std::fs::read_to_string("/proc/self/maps")
        .expect("/proc/self/maps")
        .lines()
        .any(|l| l.contains(lib))
}

#[test]
fn libsmbclient_is_mapped_only_once_a_share_is_used() {
    // libc is mapped: the check can see shared objects at all.
    assert!(mapped("libc.so"));
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // Parsing destinations and accounts (all a non-SMB capture does with
    // them) loads nothing.
    let loc = SmbLocation::parse(&format!("\\\\127.0.0.1:{port}\\images\\ref.wim")).unwrap();
    let account = Account::parse("TASQ\\nobody").unwrap();
    assert!(
        !mapped("libsmbclient"),
        "libsmbclient mapped before any SMB use"
    );
    assert!(
        !mapped("samba"),
        "a samba library mapped before any SMB use"
    );

    // Nothing listens on `port`: the connection fails, naming the server
    // and never the password, after the library was loaded.
    let err = SmbShare::connect(&loc, &account, "Secret#1")
        .err()
        .expect("connected to a closed port");
    assert!(err.contains("server 127.0.0.1 not reachable"), "{err}");
    assert!(err.contains("TASQ\\nobody"), "{err}");
    assert!(!err.contains("Secret#1"), "{err}");
    assert!(
        mapped("libsmbclient.so.0"),
        "libsmbclient not loaded by a connection"
    );
}
