//! Responses the gateway makes itself: refusals (JSON errors), and a plugin's direct
//! answer (a Python plugin's, or a native one's such as a CORS preflight). Each finishes
//! the call record with it.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};

use super::forwarding::{set_rate_limit_headers, set_request_id, strip_hop_by_hop};
use crate::body::ResponseBody;
use crate::errors::{json_body, Reject};
use crate::grpc;
use crate::plugins::rate_limit::Decision;
use crate::records::CallLog;

/// Turn a refusal into its JSON response; the call record is finished with it.
pub fn refuse(
    reject: Reject,
    mut call: CallLog,
    limit: Option<Decision>,
) -> Response<ResponseBody> {
    let status = reject.status();
    call.record.status = status.as_u16();
    call.record.error_kind = reject.kind();
    let body = match reject {
        // Nobody is there to read it: the record says 499 with nothing sent.
        Reject::ClientClosed => Bytes::new(),
        _ => json_body(
            status,
            reject.kind(),
            &reject.message(),
            &call.record.request_id,
        ),
    };
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(&mut h, &call.record.request_id);
    if let Some(d) = limit {
        set_rate_limit_headers(&mut h, &d);
    }
    match &reject {
        Reject::RateLimited(d) => {
            set_rate_limit_headers(&mut h, d);
            h.insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
        }
        Reject::MethodNotAllowed(allow) => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                h.insert(header::ALLOW, v);
            }
        }
        Reject::Plugin(refusal) => {
            for (name, value) in &refusal.headers {
                h.insert(name, value.clone());
            }
        }
        Reject::Unauthorized(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pygate\""),
            );
        }
        Reject::BasicUnauthorized(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pygate\", charset=\"UTF-8\""),
            );
        }
        _ => {}
    }
    if call.grpc {
        // gRPC clients read grpc-status, not the HTTP status: HTTP 200, no body.
        call.record.grpc_status = grpc::refusal(&mut h, status, &reject.message());
        let mut response = Response::new(ResponseBody::generated(Bytes::new(), call));
        *response.headers_mut() = h;
        return response;
    }
    let mut response = Response::new(ResponseBody::generated(body, call));
    *response.status_mut() = status;
    *response.headers_mut() = h;
    response
}

/// A plugin's direct answer: the upstream is never called.
pub fn answer(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
    mut call: CallLog,
    limit: Option<Decision>,
) -> Response<ResponseBody> {
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH); // hyper sets it from the body
    set_request_id(&mut headers, &call.record.request_id);
    if let Some(d) = limit {
        set_rate_limit_headers(&mut headers, &d);
    }
    call.record.status = status.as_u16();
    let mut response = Response::new(ResponseBody::generated(body, call));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
