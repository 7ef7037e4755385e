//! The queue between the core's workers and the Python plugin runtime.
//!
//! Only routes with Python plugins use it. A worker pushes a `PluginCall` and (for the access
//! and response phases) awaits the verdict on a oneshot channel; Python learns that calls are
//! waiting through a socket that becomes readable (it registers the fd with its event loop),
//! then drains them in one go. The socket is written only when Python is "armed" (waiting), so
//! a busy Python side costs one atomic swap per call, not one syscall.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use crossbeam_queue::SegQueue;
use http::{HeaderMap, Method};
use tokio::sync::oneshot;

use crate::records::CallRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Access,
    Response,
    Log,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Access => "access",
            Phase::Response => "response",
            Phase::Log => "log",
        }
    }
}

/// The request as Python plugins see it.
pub struct RequestView {
    pub route: Arc<str>,
    pub request_id: String,
    pub method: Method,
    pub uri: String,
    pub client_ip: IpAddr,
    pub consumer: Option<Arc<str>>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout_ms: u64,
}

pub struct ResponseView {
    pub status: u16,
    pub headers: HeaderMap,
    /// None when the response is streamed through and cannot be changed.
    pub body: Option<Bytes>,
}

pub type HeaderList = Vec<(String, Vec<u8>)>;

/// What Python decided. `None` fields mean "unchanged".
#[derive(Debug)]
pub enum Verdict {
    ContinueRequest {
        uri: Option<String>,
        headers: Option<HeaderList>,
        body: Option<Bytes>,
        upstream: Option<String>,
    },
    ContinueResponse {
        status: Option<u16>,
        headers: Option<HeaderList>,
        body: Option<Bytes>,
    },
    Answer {
        status: u16,
        headers: HeaderList,
        body: Bytes,
    },
    Fail {
        status: u16,
        kind: String,
        message: String,
        headers: HeaderList,
    },
}

pub struct PluginCall {
    pub phase: Phase,
    pub request: Option<Arc<RequestView>>,
    pub response: Option<ResponseView>,
    pub record: Option<CallRecord>,
    pub reply: Option<oneshot::Sender<Verdict>>,
}

/// Log calls are fire-and-forget; past this many waiting, new ones are dropped (and counted)
/// rather than let a slow plugin grow memory without bound.
const MAX_PENDING_LOG_CALLS: usize = 65_536;

pub struct Bridge {
    queue: SegQueue<PluginCall>,
    pending_logs: AtomicUsize,
    pub log_calls_dropped: AtomicU64,
    /// True while Python waits for the wakeup socket; the first pusher after that writes it.
    armed: AtomicBool,
    wake_tx: UnixStream,
    wake_rx: UnixStream,
}

impl Bridge {
    pub fn new() -> std::io::Result<Bridge> {
        let (wake_tx, wake_rx) = UnixStream::pair()?;
        wake_tx.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        Ok(Bridge {
            queue: SegQueue::new(),
            pending_logs: AtomicUsize::new(0),
            log_calls_dropped: AtomicU64::new(0),
            armed: AtomicBool::new(true),
            wake_tx,
            wake_rx,
        })
    }

    pub fn wakeup_fd(&self) -> RawFd {
        self.wake_rx.as_raw_fd()
    }

    /// Send a call that needs a verdict; the receiver yields it (or an error if Python
    /// dropped the call without answering).
    pub fn ask(
        &self,
        phase: Phase,
        request: Arc<RequestView>,
        response: Option<ResponseView>,
    ) -> oneshot::Receiver<Verdict> {
        let (tx, rx) = oneshot::channel();
        self.push(PluginCall {
            phase,
            request: Some(request),
            response,
            record: None,
            reply: Some(tx),
        });
        rx
    }

    /// Hand a finished call record to the log phase, unless Python is too far behind.
    pub fn tell_log(&self, record: CallRecord) {
        if self.pending_logs.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_LOG_CALLS {
            self.pending_logs.fetch_sub(1, Ordering::Relaxed);
            self.log_calls_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.push(PluginCall {
            phase: Phase::Log,
            request: None,
            response: None,
            record: Some(record),
            reply: None,
        });
    }

    fn push(&self, call: PluginCall) {
        self.queue.push(call);
        if self.armed.swap(false, Ordering::SeqCst) {
            self.wake();
        }
    }

    fn wake(&self) {
        // WouldBlock means the socket already holds unread wakeups: Python will come.
        let _ = (&self.wake_tx).write(&[1]);
    }

    /// Python's side: empty the wakeup socket, re-arm, then take up to `max` calls.
    /// Arming before popping means a call pushed meanwhile either is popped now or wakes
    /// Python again; none can be stranded.
    pub fn take(&self, max: usize) -> Vec<PluginCall> {
        let mut sink = [0u8; 256];
        while matches!((&self.wake_rx).read(&mut sink), Ok(n) if n > 0) {}
        self.armed.store(true, Ordering::SeqCst);
        let mut calls = Vec::with_capacity(self.queue.len().min(max));
        while calls.len() < max {
            let Some(call) = self.queue.pop() else { break };
            if call.phase == Phase::Log {
                self.pending_logs.fetch_sub(1, Ordering::Relaxed);
            }
            calls.push(call);
        }
        if !self.queue.is_empty() && self.armed.swap(false, Ordering::SeqCst) {
            self.wake(); // more than `max` were waiting: come back for the rest
        }
        calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> Arc<RequestView> {
        Arc::new(RequestView {
            route: Arc::from("r"),
            request_id: "id".into(),
            method: Method::GET,
            uri: "/".into(),
            client_ip: "127.0.0.1".parse().unwrap(),
            consumer: None,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout_ms: 100,
        })
    }

    fn readable(b: &Bridge) -> bool {
        let mut fds = [libc_pollfd(b.wakeup_fd())];
        // SAFETY: one valid pollfd, zero timeout.
        unsafe { poll(fds.as_mut_ptr(), 1, 0) == 1 }
    }

    #[repr(C)]
    struct PollFd {
        fd: i32,
        events: i16,
        revents: i16,
    }

    fn libc_pollfd(fd: RawFd) -> PollFd {
        PollFd {
            fd,
            events: 1, // POLLIN
            revents: 0,
        }
    }

    extern "C" {
        fn poll(fds: *mut PollFd, nfds: u64, timeout: i32) -> i32;
    }

    #[test]
    fn first_push_wakes_then_later_pushes_do_not_write() {
        let b = Bridge::new().unwrap();
        assert!(!readable(&b));
        let _rx1 = b.ask(Phase::Access, view(), None);
        assert!(readable(&b));
        let _rx2 = b.ask(Phase::Access, view(), None);
        let calls = b.take(10);
        assert_eq!(calls.len(), 2);
        assert!(!readable(&b), "take empties the wakeup socket");
        let _rx3 = b.ask(Phase::Access, view(), None);
        assert!(readable(&b), "take re-armed the wakeup");
    }

    #[test]
    fn take_beyond_max_rewakes_for_the_rest() {
        let b = Bridge::new().unwrap();
        let _rxs: Vec<_> = (0..5).map(|_| b.ask(Phase::Access, view(), None)).collect();
        assert_eq!(b.take(3).len(), 3);
        assert!(readable(&b));
        assert_eq!(b.take(3).len(), 2);
    }

    #[test]
    fn dropped_call_reports_no_answer() {
        let b = Bridge::new().unwrap();
        let rx = b.ask(Phase::Access, view(), None);
        drop(b.take(1));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(rx).is_err());
    }
}
