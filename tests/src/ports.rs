//! Free loopback ports, so tests never collide with each other or with the machine's own services.

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago (the OS picked it for a listener we then closed).
///
/// There is a small window in which another process could take it; the fixtures that use it fail loudly then.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}
