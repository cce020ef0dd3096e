//! A TCP proxy on loopback that can reset every connection through it at
//! once, as a middlebox or a crashing load balancer would: each side gets a
//! TCP RST, not a clean close.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The proxy; it stops accepting when dropped.
pub struct ResetProxy {
    pub addr: SocketAddr,
    open: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
    stop: Arc<AtomicBool>,
    /// Connections reset so far.
    pub resets: Arc<AtomicU64>,
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Closes `s` with a RST: linger on with a zero timeout, then shut down.
fn reset(s: &TcpStream) {
    let _ = nix::sys::socket::setsockopt(
        s,
        nix::sys::socket::sockopt::Linger,
        &nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        },
    );
    let _ = s.shutdown(Shutdown::Both);
}

impl ResetProxy {
    /// A proxy on a free port of 127.0.0.1 to `upstream`.
    pub fn start(upstream: SocketAddr) -> ResetProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
        let addr = listener.local_addr().expect("its address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let open: Arc<Mutex<Vec<(TcpStream, TcpStream)>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (o, st) = (Arc::clone(&open), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(server) = TcpStream::connect(upstream) else {
                    reset(&client);
                    continue;
                };
                let (c2, s2) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                o.lock().unwrap_or_else(|e| e.into_inner()).push((c2, s2));
                let (c3, s3) = match (client.try_clone(), server.try_clone()) {
                    (Ok(c), Ok(s)) => (c, s),
                    _ => continue,
                };
                std::thread::spawn(move || pump(client, server));
                std::thread::spawn(move || pump(s3, c3));
            }
        });
        ResetProxy {
            addr,
            open,
            stop,
            resets: Arc::default(),
        }
    }

    /// Resets every connection open now (both sides); returns how many.
    pub fn reset_all(&self) -> usize {
        let conns: Vec<_> =
            std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for (c, s) in &conns {
            reset(c);
            reset(s);
        }
        self.resets.fetch_add(conns.len() as u64, Ordering::Relaxed);
        conns.len()
    }
}

impl Drop for ResetProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.reset_all();
    }
}
