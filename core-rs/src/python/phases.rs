//! The two phases in which a route's Python plugins may change a call: `access` (before the
//! upstream is called) and `response` (after it answered). The core hands the call over through
//! `bridge.rs`, waits for the verdict with a deadline, and applies it. Routes without Python
//! plugins never come here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Method, StatusCode, Uri};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::body::{RequestBody, UpstreamConn};
use crate::config::Limits;
use crate::errors::{intern_kind, PluginRefusal, Reject};
use crate::python::bridge::{Bridge, HeaderList, Phase, RequestView, ResponseView, Verdict};
use crate::upstream::Upstream;

/// Python's own deadline is the plugin timeout; the core waits this much longer before it
/// answers 504 by itself (for a plugin that blocks Python's event loop, say).
const BACKSTOP: Duration = Duration::from_secs(1);

/// Read a whole request body for the access phase, within the body limit and the client
/// body timeout (between two reads, as for a streamed upload; see body/upload.rs).
pub async fn read_body(body: Incoming, limits: &Limits) -> Result<Bytes, Reject> {
    let (body, meter) = RequestBody::new(body, limits);
    let Some(meter) = meter else {
        return Ok(Bytes::new());
    };
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err(meter
            .client_fault()
            .unwrap_or(Reject::BadRequest("the request body could not be read"))),
    }
}

pub fn request_view(
    parts: &Parts,
    route: &Arc<str>,
    request_id: &str,
    consumer: Option<Arc<str>>,
    client_ip: std::net::IpAddr,
    body: Bytes,
    timeout_ms: u64,
) -> Arc<RequestView> {
    Arc::new(RequestView {
        route: route.clone(),
        request_id: request_id.to_owned(),
        method: parts.method.clone(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned()),
        client_ip,
        consumer,
        headers: parts.headers.clone(),
        body,
        timeout_ms,
    })
}

pub enum Access {
    /// Go on to `upstream` (None: the route's own) with the (possibly changed) request.
    Proceed {
        body: Bytes,
        upstream: Option<Arc<Upstream>>,
    },
    Answer {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
}

/// Run the access phase. On `Proceed`, `parts` holds the request to send upstream.
pub async fn access(
    bridge: &Bridge,
    view: Arc<RequestView>,
    parts: &mut Parts,
    upstreams: &[Arc<Upstream>],
) -> Result<Access, Reject> {
    let original_body = view.body.clone();
    let verdict = ask(bridge, Phase::Access, view, None).await?;
    match verdict {
        Verdict::ContinueRequest {
            uri,
            headers,
            body,
            upstream,
        } => {
            if let Some(uri) = uri {
                parts.uri = parse_uri(&uri)?;
            }
            if let Some(list) = headers {
                parts.headers = header_map(&list)?;
            }
            let upstream = match upstream {
                None => None,
                Some(name) => Some(
                    upstreams
                        .iter()
                        .find(|u| u.name == name)
                        .cloned()
                        .ok_or_else(|| {
                            Reject::plugin_error(format!(
                                "a plugin chose the unknown upstream {name:?}"
                            ))
                        })?,
                ),
            };
            let body = body.unwrap_or(original_body);
            set_content_length(&mut parts.headers, body.len());
            Ok(Access::Proceed { body, upstream })
        }
        Verdict::Answer {
            status,
            headers,
            body,
        } => Ok(Access::Answer {
            status: status_code(status)?,
            headers: header_map(&headers)?,
            body,
        }),
        other => Err(unexpected(other)),
    }
}

/// Where the client's response body comes from.
pub enum UpstreamSource {
    Stream(Incoming, UpstreamConn),
    /// Read whole for the response phase (the connection is already back in its pool).
    Whole(Bytes),
}

/// The response phase: read the upstream body whole when it may be changed, ask the plugins,
/// apply their changes to `head`, and say where the body now comes from.
pub async fn respond(
    bridge: &Bridge,
    view: Arc<RequestView>,
    head: &mut http::response::Parts,
    body: Incoming,
    conn: UpstreamConn,
    read_timeout: Duration,
    limit: u64,
) -> Result<UpstreamSource, Reject> {
    let bodiless = is_bodiless(&view.method, head.status);
    if !bodiless && !bufferable(&head.headers, limit) {
        response(bridge, view, head, None, false).await?;
        return Ok(UpstreamSource::Stream(body, conn));
    }
    let whole = match tokio::time::timeout(read_timeout, body.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return Err(Reject::UpstreamUnavailable),
        Err(_) => return Err(Reject::UpstreamTimeout),
    };
    conn.target.checkin(conn.worker, conn.sender);
    let changed = response(bridge, view, head, Some(whole), bodiless).await?;
    Ok(UpstreamSource::Whole(changed.unwrap_or_default()))
}

/// Whether a response is read whole for the response phase: only when its length is known
/// and within the body limit, and it is not an event stream (which must flow as it comes).
pub fn bufferable(headers: &HeaderMap, limit: u64) -> bool {
    let event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    !event_stream && length.is_some_and(|n| n <= limit)
}

/// Responses that never carry a body (RFC 9110 §9.3.2, §15.3.5, §15.4.5). Their
/// Content-Length, if any, describes the body a GET would get (for HEAD) or the selected
/// representation (304), not the empty one here, so it must not be recomputed from it.
fn is_bodiless(method: &Method, status: StatusCode) -> bool {
    method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// Run the response phase over a response head and (when bufferable) its whole body.
/// `bodiless`: the body shown is empty by definition (see `is_bodiless`).
async fn response(
    bridge: &Bridge,
    view: Arc<RequestView>,
    head: &mut http::response::Parts,
    body: Option<Bytes>,
    bodiless: bool,
) -> Result<Option<Bytes>, Reject> {
    let shown = ResponseView {
        status: head.status.as_u16(),
        headers: head.headers.clone(),
        body: body.clone(),
    };
    match ask(bridge, Phase::Response, view, Some(shown)).await? {
        Verdict::ContinueResponse {
            status,
            headers,
            body: new_body,
        } => {
            if let Some(s) = status {
                head.status = status_code(s)?;
            }
            if let Some(list) = headers {
                head.headers = header_map(&list)?;
            }
            let replaced = new_body.is_some();
            let body = match (new_body, body) {
                (Some(_), None) => {
                    return Err(Reject::plugin_error(
                        "a plugin changed the body of a streamed response",
                    ))
                }
                (Some(new), Some(_)) => Some(new),
                (None, old) => old,
            };
            match &body {
                // The GET length is unknown once a plugin rewrote the body: say nothing.
                Some(_) if bodiless && replaced => {
                    head.headers.remove(header::CONTENT_LENGTH);
                }
                Some(_) if bodiless => {}
                Some(b) => set_content_length(&mut head.headers, b.len()),
                None => {}
            }
            Ok(body)
        }
        other => Err(unexpected(other)),
    }
}

async fn ask(
    bridge: &Bridge,
    phase: Phase,
    view: Arc<RequestView>,
    shown: Option<ResponseView>,
) -> Result<Verdict, Reject> {
    let deadline = Duration::from_millis(view.timeout_ms) + BACKSTOP;
    let reply = bridge.ask(phase, view, shown);
    let verdict = match tokio::time::timeout(deadline, reply).await {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => return Err(Reject::plugin_error("a plugin gave no answer")),
        Err(_) => {
            return Err(Reject::plugin(
                StatusCode::GATEWAY_TIMEOUT,
                "plugin_timeout",
                "a plugin did not finish in time",
            ))
        }
    };
    match verdict {
        Verdict::Fail {
            status,
            kind,
            message,
            headers,
        } => Err(Reject::Plugin(Box::new(PluginRefusal {
            status: status_code(status)?,
            kind: intern_kind(&kind),
            message,
            headers: header_map(&headers)?,
        }))),
        v => Ok(v),
    }
}

fn unexpected(v: Verdict) -> Reject {
    Reject::plugin_error(format!(
        "a plugin replied with the wrong kind of answer: {v:?}"
    ))
}

fn status_code(status: u16) -> Result<StatusCode, Reject> {
    StatusCode::from_u16(status)
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| Reject::plugin_error(format!("a plugin set the invalid status {status}")))
}

fn parse_uri(uri: &str) -> Result<Uri, Reject> {
    uri.parse::<Uri>()
        .ok()
        .filter(|u| uri.starts_with('/') && u.path_and_query().is_some())
        .ok_or_else(|| {
            Reject::plugin_error(format!(
                "a plugin set the invalid URI {uri:?}; expected /path?query"
            ))
        })
}

pub fn header_map(list: &HeaderList) -> Result<HeaderMap, Reject> {
    let mut map = HeaderMap::with_capacity(list.len());
    for (name, value) in list {
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            Reject::plugin_error(format!("a plugin set the invalid header name {name:?}"))
        })?;
        let v = HeaderValue::from_bytes(value).map_err(|_| {
            Reject::plugin_error(format!("a plugin set an invalid value for header {name:?}"))
        })?;
        map.append(n, v);
    }
    Ok(map)
}

fn set_content_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(header::TRANSFER_ENCODING);
    if len == 0 && !headers.contains_key(header::CONTENT_LENGTH) {
        return;
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_length_non_streams_are_buffered() {
        let mut h = HeaderMap::new();
        assert!(!bufferable(&h, 100), "no length: streamed");
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(10));
        assert!(bufferable(&h, 100));
        assert!(!bufferable(&h, 5), "over the limit");
        h.insert(header::CONTENT_TYPE, "text/event-stream".parse().unwrap());
        assert!(!bufferable(&h, 100));
    }

    #[test]
    fn head_and_empty_statuses_are_bodiless() {
        assert!(is_bodiless(&Method::HEAD, StatusCode::OK));
        assert!(is_bodiless(&Method::GET, StatusCode::NOT_MODIFIED));
        assert!(is_bodiless(&Method::GET, StatusCode::NO_CONTENT));
        assert!(!is_bodiless(&Method::GET, StatusCode::OK));
    }

    #[test]
    fn plugin_headers_are_checked() {
        let ok = header_map(&vec![("x-a".into(), b"1".to_vec())]).unwrap();
        assert_eq!(ok["x-a"], "1");
        assert!(header_map(&vec![("bad name".into(), b"1".to_vec())]).is_err());
        assert!(header_map(&vec![("x-a".into(), b"a\r\nb".to_vec())]).is_err());
    }

    #[test]
    fn plugin_uris_must_be_origin_form() {
        assert_eq!(parse_uri("/a?b=1").unwrap().query(), Some("b=1"));
        assert!(parse_uri("http://evil/").is_err());
        assert!(parse_uri("a b").is_err());
    }
}
