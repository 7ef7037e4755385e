//! A minimal HTTP/1.1 client loop for load generation: the request is pre-encoded once, and a
//! response is parsed with httparse and its body skipped without being stored. A general
//! client (hyper's) would allocate per request and cost the generator the speed it measures.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Enough for any ordinary response; more is reported as a protocol error.
const MAX_HEADERS: usize = 48;

pub struct Response {
    pub status: u16,
    pub keep_alive: bool,
    pub bytes: u64,
}

pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Conn {
    pub async fn connect(addr: &str) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    async fn fill(&mut self) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(n)
    }

    pub async fn round_trip(&mut self, request: &[u8], is_head: bool) -> io::Result<Response> {
        self.stream.write_all(request).await?;
        let (status, head_len, framing, keep_alive) = loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut headers);
            match parsed
                .parse(&self.buf)
                .map_err(|_| invalid("malformed response"))?
            {
                httparse::Status::Complete(n) => {
                    let status = parsed.code.unwrap_or(0);
                    let mut framing = Framing::UntilClose;
                    let mut keep_alive = parsed.version == Some(1);
                    for h in parsed.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let len = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse().ok())
                                .ok_or_else(|| invalid("bad content-length"))?;
                            framing = Framing::Length(len);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                            && h.value.eq_ignore_ascii_case(b"chunked")
                        {
                            framing = Framing::Chunked;
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            keep_alive = !h.value.eq_ignore_ascii_case(b"close");
                        }
                    }
                    if is_head || status == 204 || status == 304 || (100..200).contains(&status) {
                        framing = Framing::Length(0);
                    }
                    break (status, n, framing, keep_alive);
                }
                httparse::Status::Partial => {
                    self.fill().await?;
                }
            }
        };
        self.buf.drain(..head_len);
        let body = match framing {
            Framing::Length(n) => self.skip(n).await?,
            Framing::Chunked => self.skip_chunked().await?,
            Framing::UntilClose => {
                let mut n = self.buf.len() as u64;
                self.buf.clear();
                loop {
                    match self.fill().await {
                        Ok(k) => n += k as u64,
                        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                        Err(e) => return Err(e),
                    }
                    self.buf.clear();
                }
                return Ok(Response {
                    status,
                    keep_alive: false,
                    bytes: head_len as u64 + n,
                });
            }
        };
        Ok(Response {
            status,
            keep_alive,
            bytes: head_len as u64 + body,
        })
    }

    async fn skip(&mut self, mut n: u64) -> io::Result<u64> {
        let total = n;
        loop {
            let take = (self.buf.len() as u64).min(n) as usize;
            self.buf.drain(..take);
            n -= take as u64;
            if n == 0 {
                return Ok(total);
            }
            self.fill().await?;
        }
    }

    async fn line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = self.buf[..i].to_vec();
                self.buf.drain(..i + 2);
                return Ok(line);
            }
            if self.buf.len() > 64 * 1024 {
                return Err(invalid("chunk header too long"));
            }
            self.fill().await?;
        }
    }

    async fn skip_chunked(&mut self) -> io::Result<u64> {
        let mut total = 0;
        loop {
            let line = self.line().await?;
            let size_hex = line.split(|&c| c == b';').next().unwrap_or(&[]);
            let size = std::str::from_utf8(size_hex)
                .ok()
                .and_then(|s| u64::from_str_radix(s.trim(), 16).ok())
                .ok_or_else(|| invalid("bad chunk size"))?;
            if size == 0 {
                // Trailers end with an empty line.
                while !self.line().await?.is_empty() {}
                return Ok(total);
            }
            total += self.skip(size + 2).await? - 2;
        }
    }
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}
