//! Streamed answers: a call whose client asked for `text/event-stream`
//! runs as a task of its own, and its events, then its JSON-RPC response,
//! are written as server-sent events. The client going away stops the
//! writing, never the call: the handler's later sends just fail.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use archipelago_api::rpc::{self, EVENT_STREAM, SSE_RESPONSE, StreamEvent};
use archipelago_api::{ApiError, ErrorCode};
use http_body_util::Either;
use hyper::Response;
use hyper::body::{Body, Bytes, Frame};
use hyper::header::{self, HeaderValue};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use super::envelope::{ResBody, encode};
use super::{Events, Handler};

/// Events a streaming handler may get ahead of its client.
const EVENT_BUFFER: usize = 64;
/// SSE frames queued for the connection.
const FRAME_BUFFER: usize = 16;

/// Starts a streamed call and answers with its event stream at once.
pub(super) fn stream_call<H: Handler>(
    handler: Arc<H>,
    method: &'static str,
    params: Value,
    id: Value,
    keepalive: Duration,
) -> Response<ResBody> {
    let (events_tx, events_rx) = mpsc::channel::<StreamEvent>(EVENT_BUFFER);
    let (frames_tx, frames_rx) = mpsc::channel::<Bytes>(FRAME_BUFFER);
    let span = tracing::Span::current();
    let call = tokio::spawn(
        async move {
            let events: Events = events_tx;
            handler.call(method, params, Some(events)).await
        }
        .instrument(span.clone()),
    );
    tokio::spawn(forward(events_rx, call, frames_tx, id, keepalive).instrument(span));
    let mut res = Response::new(Either::Right(FrameStream(frames_rx)));
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(EVENT_STREAM));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// Turns the handler's events and then its result into SSE frames. If the
/// client goes away, stops forwarding (the handler's sends then fail) and
/// leaves the call running to its end.
async fn forward(
    mut events: mpsc::Receiver<StreamEvent>,
    mut call: JoinHandle<Result<Value, ApiError>>,
    frames: mpsc::Sender<Bytes>,
    id: Value,
    keepalive: Duration,
) {
    // `interval` refuses a zero period.
    let keepalive = keepalive.max(Duration::from_millis(10));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
    let mut events_open = true;
    let joined = loop {
        tokio::select! {
            biased;
            event = events.recv(), if events_open => match event {
                Some(event) => {
                    if frames.send(sse_event(&event)).await.is_err() {
                        break None;
                    }
                }
                None => events_open = false,
            },
            result = &mut call => break Some(result),
            () = frames.closed() => break None,
            _ = tick.tick() => {
                if frames.send(Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    break None;
                }
            }
        }
    };
    let Some(joined) = joined else {
        drop(events);
        tracing::debug!("client left the stream; the call goes on");
        tokio::spawn(
            async move {
                match call.await {
                    Ok(Ok(_)) => tracing::debug!("streamed call finished after its client left"),
                    Ok(Err(e)) => tracing::debug!(
                        code = e.code.as_i32(),
                        "streamed call failed after its client left"
                    ),
                    Err(e) => tracing::error!(error = %e, "a streamed call panicked"),
                }
            }
            .instrument(tracing::Span::current()),
        );
        return;
    };
    // Events sent before the handler returned come before the response.
    while let Ok(event) = events.try_recv() {
        if frames.send(sse_event(&event)).await.is_err() {
            return;
        }
    }
    let result = joined.unwrap_or_else(|e| {
        tracing::error!(error = %e, "a call panicked");
        Err(ErrorCode::Internal.with("the call failed inside the node; its log says more"))
    });
    let response = match result {
        Ok(value) => rpc::Response::ok(id, value),
        Err(e) => rpc::Response::err(id, e),
    };
    let _ = frames
        .send(sse_frame(SSE_RESPONSE, &encode(&response)))
        .await;
}

fn sse_event(event: &StreamEvent) -> Bytes {
    let data = serde_json::to_vec(event).unwrap_or_else(|_| b"null".to_vec());
    sse_frame(event.sse_name(), &data)
}

/// One server-sent event. JSON has no raw line breaks, so `data` is one line.
fn sse_frame(name: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(name.len() + data.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// The body of an event stream: frames as the forwarder sends them; ends
/// when it drops its sender.
#[derive(Debug)]
pub(super) struct FrameStream(mpsc::Receiver<Bytes>);

impl Body for FrameStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_frames_are_one_event_each() {
        let frame = sse_frame("response", br#"{"a":"x\ny"}"#);
        assert_eq!(&frame[..], b"event: response\ndata: {\"a\":\"x\\ny\"}\n\n");
    }
}
