//! RFC 6455 frame headers read as the bytes pass: opcode, length, mask and the first two
//! bytes of a Close frame's payload (its status code). Payloads are never held: a scanner
//! only says how many of the bytes it was shown can be forwarded now. The one exception is
//! an incomplete header at the end of a read (at most 13 bytes), held back so that a frame
//! over the limit is refused before any byte of it reaches the other side.

/// What one `Scanner::feed` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Scanned {
    /// Bytes from the start of the input that belong to frames within the limit.
    pub safe: usize,
    /// The frame starting at `safe` is over the limit.
    pub too_big: bool,
    /// A Close frame ended in this input, with this code (1005: it carried none).
    pub close_code: Option<u16>,
    /// Frames whose header was read in this input.
    pub frames: u64,
}

struct CloseRead {
    mask: Option<[u8; 4]>,
    got: usize,
    code: [u8; 2],
}

/// One direction of a WebSocket connection.
pub struct Scanner {
    max_frame: u64,
    /// Payload bytes of the current frame still to pass.
    remaining: u64,
    close: Option<CloseRead>,
}

struct Header {
    opcode: u8,
    len: u64,
    mask: Option<[u8; 4]>,
    header_len: usize,
}

const OP_CLOSE: u8 = 0x8;
pub const NO_STATUS: u16 = 1005;

impl Scanner {
    pub fn new(max_frame: u64) -> Scanner {
        Scanner {
            max_frame,
            remaining: 0,
            close: None,
        }
    }

    /// `data` starts where the previous call's `safe` ended (held-back bytes first).
    pub fn feed(&mut self, data: &[u8]) -> Scanned {
        let mut out = Scanned::default();
        let mut pos = 0;
        loop {
            if self.remaining > 0 {
                let take = self.remaining.min((data.len() - pos) as u64) as usize;
                if let Some(c) = self.close.as_mut() {
                    for &b in &data[pos..pos + take] {
                        if c.got == 2 {
                            break;
                        }
                        c.code[c.got] = b ^ c.mask.map_or(0, |m| m[c.got]);
                        c.got += 1;
                    }
                }
                pos += take;
                self.remaining -= take as u64;
                if self.remaining == 0 {
                    if let Some(c) = self.close.take() {
                        out.close_code = Some(if c.got == 2 {
                            u16::from_be_bytes(c.code)
                        } else {
                            NO_STATUS
                        });
                    }
                }
            }
            if pos == data.len() {
                out.safe = pos;
                return out;
            }
            // The length alone decides a refusal, before the mask key has arrived.
            if length(&data[pos..]).is_some_and(|(len, _)| len > self.max_frame) {
                out.safe = pos;
                out.too_big = true;
                return out;
            }
            let Some(h) = header(&data[pos..]) else {
                out.safe = pos;
                return out;
            };
            out.frames += 1;
            pos += h.header_len;
            self.remaining = h.len;
            if h.opcode == OP_CLOSE {
                if h.len == 0 {
                    out.close_code = Some(NO_STATUS);
                } else {
                    self.close = Some(CloseRead {
                        mask: h.mask,
                        got: 0,
                        code: [0; 2],
                    });
                }
            }
        }
    }
}

/// The payload length and where the mask key (or the payload) starts.
fn length(b: &[u8]) -> Option<(u64, usize)> {
    Some(match *b.get(1)? & 0x7f {
        126 => (u16::from_be_bytes(b.get(2..4)?.try_into().ok()?) as u64, 4),
        127 => (u64::from_be_bytes(b.get(2..10)?.try_into().ok()?), 10),
        short => (short as u64, 2),
    })
}

fn header(b: &[u8]) -> Option<Header> {
    let (len, mut n) = length(b)?;
    let mask = if b[1] & 0x80 != 0 {
        let m: [u8; 4] = b.get(n..n + 4)?.try_into().ok()?;
        n += 4;
        Some(m)
    } else {
        None
    };
    Some(Header {
        opcode: b[0] & 0x0f,
        len,
        mask,
        header_len: n,
    })
}

/// A Close frame with `code` and a short reason; `masked` for frames sent to the upstream
/// (a client's frames must be masked, a server's must not).
pub fn close_frame(code: u16, reason: &str, masked: bool) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(&reason.as_bytes()[..reason.len().min(123)]);
    let mut frame = vec![0x80 | OP_CLOSE, payload.len() as u8];
    if masked {
        frame[1] |= 0x80;
        let key = fastrand::u32(..).to_be_bytes();
        frame.extend_from_slice(&key);
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    frame.extend_from_slice(&payload);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut f = vec![0x80 | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => f.push(m | n as u8),
            n if n <= 0xffff => {
                f.push(m | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(m | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                f.extend_from_slice(&k);
                f.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => f.extend_from_slice(payload),
        }
        f
    }

    #[test]
    fn frames_pass_whole_and_split_anywhere() {
        let mut wire = frame(0x1, b"hello", Some([1, 2, 3, 4]));
        wire.extend(frame(0x2, &[7; 300], None));
        wire.extend(frame(
            0x8,
            &[0x03, 0xe8, b'b', b'y', b'e'],
            Some([9, 8, 7, 6]),
        ));
        let whole = Scanner::new(1000).feed(&wire);
        assert_eq!(whole.safe, wire.len());
        assert_eq!(whole.frames, 3);
        assert_eq!(whole.close_code, Some(1000));
        for split in 1..wire.len() {
            let mut s = Scanner::new(1000);
            let first = s.feed(&wire[..split]);
            let rest = s.feed(&wire[first.safe..]);
            assert_eq!(first.safe + rest.safe, wire.len(), "split at {split}");
            assert_eq!(first.frames + rest.frames, 3);
            assert_eq!(first.close_code.or(rest.close_code), Some(1000));
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_stopped_before_its_header() {
        let mut wire = frame(0x1, b"ok", None);
        wire.extend(frame(0x2, &[0; 70_000], None));
        let s = Scanner::new(65_536).feed(&wire);
        assert_eq!((s.safe, s.too_big), (4, true));
        // Only the length is needed to refuse it, without the mask key that follows.
        let mut s = Scanner::new(10);
        assert!(s.feed(&[0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0]).too_big);
    }

    #[test]
    fn close_without_code_and_our_close_frames_read_back() {
        assert_eq!(
            Scanner::new(10).feed(&frame(0x8, b"", None)).close_code,
            Some(NO_STATUS)
        );
        for masked in [false, true] {
            let f = close_frame(1009, "frame too large", masked);
            let s = Scanner::new(125).feed(&f);
            assert_eq!((s.safe, s.close_code), (f.len(), Some(1009)));
        }
    }
}
