//! Bodies on both sides of the proxy, streamed frame by frame and never buffered whole:
//! `upload.rs` meters, limits and times what the client uploads (`RequestBody`);
//! `response.rs` streams the answer back (`ResponseBody`), returns the upstream connection to
//! its pool when the body ends and then finishes the call record (records/call_log.rs).

mod response;
mod upload;

pub use response::{ConnFlags, ResponseBody, UpstreamConn};
pub use upload::{BodyMeter, BoxError, RequestBody};
