//! A batch of finished calls as an OTLP `ExportTraceServiceRequest` (the messages of the
//! `opentelemetry-proto` crate, encoded by prost). Attribute names follow the OpenTelemetry
//! HTTP semantic conventions where one exists (`http.request.method`,
//! `http.response.status_code`, `url.path`, `server.address`, `client.address`,
//! `network.protocol.version`, `error.type`); the gateway's own are under `pygate.`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use prost::Message;

use super::FinishedSpan;

fn text(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
    }
}

pub fn span_of(s: &FinishedSpan) -> Span {
    let method = s.method.as_ref().map_or("_OTHER", |m| m.as_str());
    // The span name is `{method} {route}` (the convention's low-cardinality name).
    let name = match &s.route {
        Some(r) => format!("{method} {r}"),
        None => method.to_owned(),
    };
    let mut attributes = vec![
        text("http.request.method", method),
        int("http.response.status_code", i64::from(s.status)),
        text("url.path", s.path.clone()),
    ];
    if !s.host.is_empty() {
        attributes.push(text("server.address", s.host.clone()));
    }
    if let Some(v) = s.protocol.strip_prefix("HTTP/") {
        attributes.push(text("network.protocol.version", v));
    }
    if let Some(ip) = s.client_ip {
        attributes.push(text("client.address", ip.to_string()));
    }
    if let Some(r) = &s.route {
        attributes.push(text("pygate.route", &**r));
    }
    if let Some(c) = &s.consumer {
        attributes.push(text("pygate.consumer", &**c));
    }
    if let Some(u) = &s.upstream_addr {
        attributes.push(text("pygate.upstream.address", &**u));
        attributes.push(int("pygate.upstream.ttfb_us", s.upstream_ttfb_us as i64));
    }
    let total_us = s.end_unix_ns.saturating_sub(s.start_unix_ns) / 1_000;
    attributes.push(int("pygate.total_us", total_us as i64));
    let failed = s.status >= 500 || !s.error_kind.is_empty() && s.status == 0;
    if !s.error_kind.is_empty() {
        attributes.push(text("error.type", s.error_kind));
    } else if s.status >= 500 {
        attributes.push(text("error.type", s.status.to_string()));
    }
    Span {
        trace_id: s.trace_id.to_be_bytes().to_vec(),
        span_id: s.span_id.to_be_bytes().to_vec(),
        trace_state: s.tracestate.clone().unwrap_or_default(),
        parent_span_id: s
            .parent_span_id
            .map(|p| p.to_be_bytes().to_vec())
            .unwrap_or_default(),
        flags: u32::from(s.flags),
        name,
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: s.start_unix_ns,
        end_time_unix_nano: s.end_unix_ns,
        attributes,
        status: Some(Status {
            // Server spans: 5xx is an error, 4xx is the client's (the convention).
            code: if failed {
                status::StatusCode::Error as i32
            } else {
                status::StatusCode::Unset as i32
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn request(service_name: &str, spans: &[FinishedSpan]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![text("service.name", service_name)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "pygate".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: spans.iter().map(span_of).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

pub fn encode(service_name: &str, spans: &[FinishedSpan]) -> Vec<u8> {
    request(service_name, spans).encode_to_vec()
}

/// gRPC's length-prefixed message: no compression flag, a 4-byte big-endian length.
pub fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(&(message.len() as u32).to_be_bytes());
    out.extend_from_slice(message);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_round_trips_with_its_ids_and_attributes() {
        let s = FinishedSpan {
            trace_id: 0x4bf92f3577b34da6a3ce929d0e0e4736,
            span_id: 7,
            parent_span_id: Some(0x00f067aa0ba902b7),
            flags: 1,
            tracestate: Some("a=1".into()),
            start_unix_ns: 1_000_000,
            end_unix_ns: 3_000_000,
            method: Some(http::Method::GET),
            route: Some("r".into()),
            consumer: None,
            status: 502,
            path: "/x".into(),
            host: "h".into(),
            protocol: "HTTP/1.1",
            client_ip: None,
            upstream_addr: Some("127.0.0.1:1".into()),
            upstream_ttfb_us: 5,
            error_kind: "",
        };
        let bytes = encode("svc", &[s]);
        let back = ExportTraceServiceRequest::decode(&bytes[..]).unwrap();
        let span = &back.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex(&span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(span.name, "GET r");
        assert_eq!(
            span.status.as_ref().unwrap().code,
            status::StatusCode::Error as i32
        );
        let keys: Vec<&str> = span.attributes.iter().map(|a| a.key.as_str()).collect();
        assert!(keys.contains(&"http.response.status_code"));
        assert!(keys.contains(&"error.type"));
        assert_eq!(grpc_frame(b"ab"), vec![0, 0, 0, 0, 2, b'a', b'b']);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
