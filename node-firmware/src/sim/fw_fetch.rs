//! The mesh root's download of ESP32 firmware after `upgrade`: a plain HTTP/1.1 `GET` of
//! `http://<fw-server>/demesh_<board>_<M>_<m>.bin` on a thread of its own, so that the mesh
//! does not stall while it runs. Like the real root it retries opening the connection a few
//! times, a second apart, and takes the version from the command (the file name), not from
//! the bytes: any non-empty body of a `200` is an image.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::mpsc;
use std::time::Duration;

/// Largest image the root downloads.
const MAX_IMAGE_BYTES: usize = 4 * 1024 * 1024;
/// The response head may not be longer than this.
const MAX_HEAD_BYTES: usize = 16 * 1024;
const CONNECT_ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A download under way; [`Fetch::poll`] says when it is over.
#[derive(Debug)]
pub(super) struct Fetch {
    pub(super) board: String,
    pub(super) version: heapless::String<16>,
    done: mpsc::Receiver<Result<usize, String>>,
}

impl Fetch {
    /// Starts downloading the image of `board` `version` ("M.m") from `server` (`host:port`).
    pub(super) fn start(server: &str, board: &str, version: &heapless::String<16>) -> Self {
        let file = format!("demesh_{board}_{}.bin", version.replace('.', "_"));
        let (tx, done) = mpsc::channel();
        let server = server.to_owned();
        std::thread::spawn(move || {
            let _ = tx.send(get(&server, &file));
        });
        Self {
            board: board.to_owned(),
            version: version.clone(),
            done,
        }
    }

    /// `None` while it runs, then the image's size or why there is none.
    pub(super) fn poll(&self) -> Option<Result<usize, String>> {
        match self.done.try_recv() {
            Ok(result) => Some(result),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err("the download stopped".into())),
        }
    }
}

fn get(server: &str, file: &str) -> Result<usize, String> {
    let addr = server
        .to_socket_addrs()
        .map_err(|e| format!("{server}: {e}"))?
        .next()
        .ok_or_else(|| format!("{server}: no address"))?;
    let mut stream = None;
    for attempt in 1..=CONNECT_ATTEMPTS {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) if attempt == CONNECT_ATTEMPTS => {
                return Err(format!("firmware server {server}: {e}"))
            }
            Err(_) => std::thread::sleep(Duration::from_secs(1)),
        }
    }
    let mut stream = stream.ok_or("no connection")?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    let request = format!("GET /{file} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    let limit = u64::try_from(MAX_IMAGE_BYTES + MAX_HEAD_BYTES).unwrap_or(u64::MAX);
    stream
        .take(limit + 1)
        .read_to_end(&mut response)
        .map_err(|e| format!("reading {file}: {e}"))?;
    let head_end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .filter(|&n| n <= MAX_HEAD_BYTES)
        .ok_or_else(|| format!("{file}: no HTTP response head"))?;
    let head = String::from_utf8_lossy(response.get(..head_end).unwrap_or_default());
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("{file}: HTTP {status}"));
    }
    let body = response.len() - head_end - 4;
    if body == 0 || body > MAX_IMAGE_BYTES {
        return Err(format!("{file}: {body} bytes is not an image"));
    }
    Ok(body)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_server_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = get(&addr.to_string(), "demesh_agccs12_3_6.bin").unwrap_err();
        assert!(err.contains("firmware server"), "{err}");
    }

    #[test]
    fn a_served_image_is_fetched() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).unwrap();
            let request = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
            request
        });
        assert_eq!(get(&addr.to_string(), "demesh_agccs12_3_6.bin"), Ok(5));
        assert!(server
            .join()
            .unwrap()
            .starts_with("GET /demesh_agccs12_3_6.bin HTTP/1.1"));
    }
}
