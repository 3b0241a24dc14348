//! hyper's own answers to requests it cannot parse — 400 for a malformed request, 414 for a URI
//! past its limit, 431 for a header section past its read buffer or with more than 100 headers —
//! given the one JSON error shape, a fresh `X-Request-Id` and `nosniff`, like every other answer.
//!
//! hyper writes these itself, before any service sees a request, so no layer can reach them.
//! They are recognised on the way out instead: [`ShapedErrors`] wraps the connection's socket,
//! and a write that is exactly a bare 400, 414 or 431 head is replaced by the full answer — but
//! only a write that starts at a boundary between exchanges. A response body's bytes are the
//! app's, which a client may choose (a downloaded file), and rewriting them would desynchronise
//! the connection, so a write is looked at only when nothing of an earlier answer can be in it:
//! on a fresh connection, or right after hyper flushed the socket — which it asks for only once
//! it has written out everything it held — with no request in flight. Whatever hyper writes
//! next starts a new answer: the app's own, which always carries `X-Request-Id` and so is never
//! taken for a bare head, or one of hyper's refusals, on a keep-alive connection as on a new
//! one. Once a connection is HTTP/2, upgraded (101) or a CONNECT tunnel, nothing more is looked
//! at. A refusal that hyper writes together with the tail of the previous answer (a slow reader
//! and a pipelined request) stays bare: safe, and rare.

use std::{
    io::{self, IoSlice},
    pin::Pin,
    sync::Arc,
    task::{ready, Context, Poll},
};

use axum::{body::Bytes, http::StatusCode};
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{connection_deadlines::ConnectionActivity, request_id::RequestId, ApiError};

pin_project! {
    /// A connection's socket, with hyper's bare error answers given the one error shape.
    #[derive(Debug)]
    pub(crate) struct ShapedErrors<T> {
        #[pin]
        io: T,
        // Tells whether a request is in flight, and whether the connection is HTTP/2 or was
        // handed over to another protocol (an upgrade, a CONNECT tunnel).
        activity: Arc<ConnectionActivity>,
        // What is left to write of a replaced answer.
        pending: Bytes,
        // No byte has been written since the connection opened or since hyper last flushed
        // with no request in flight: the next write starts a new answer.
        at_boundary: bool,
    }
}

impl<T> ShapedErrors<T> {
    pub(crate) fn new(io: T, activity: Arc<ConnectionActivity>) -> Self {
        Self {
            io,
            activity,
            pending: Bytes::new(),
            at_boundary: true,
        }
    }

    /// Whether `head` may be one of hyper's bare answers and is worth a closer look.
    #[inline]
    fn may_be_hypers(&self, head: &[u8]) -> bool {
        self.at_boundary && head.starts_with(ERROR_HEAD) && self.activity.is_between_exchanges()
    }
}

impl<T: AsyncWrite> ShapedErrors<T> {
    /// Writes what is left of a replaced answer before anything else.
    fn poll_pending(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut this = self.project();
        while !this.pending.is_empty() {
            let written = ready!(this.io.as_mut().poll_write(cx, this.pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let _ = this.pending.split_to(written);
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead> AsyncRead for ShapedErrors<T> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.project().io.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for ShapedErrors<T> {
    #[inline]
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.pending.is_empty() {
            ready!(self.as_mut().poll_pending(cx))?;
        }
        if self.may_be_hypers(buf) {
            if let Some(answer) = shaped_answer(buf) {
                // Taken whole now; written by the flush hyper sends after it.
                *self.as_mut().project().pending = answer;
                return Poll::Ready(Ok(buf.len()));
            }
        }
        let this = self.project();
        *this.at_boundary = false;
        this.io.poll_write(cx, buf)
    }

    #[inline]
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.pending.is_empty() {
            ready!(self.as_mut().poll_pending(cx))?;
        }
        // hyper's own answer is a head alone, in the first slice.
        if bufs.first().is_some_and(|first| self.may_be_hypers(first))
            && bufs[1..].iter().all(|rest| rest.is_empty())
        {
            if let Some(answer) = shaped_answer(&bufs[0]) {
                *self.as_mut().project().pending = answer;
                return Poll::Ready(Ok(bufs[0].len()));
            }
        }
        let this = self.project();
        *this.at_boundary = false;
        this.io.poll_write_vectored(cx, bufs)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.pending.is_empty() {
            ready!(self.as_mut().poll_pending(cx))?;
        }
        let this = self.project();
        // hyper flushes the socket only once its own buffer is empty: every byte it held is
        // written. With no request in flight, none is still to come.
        if this.activity.is_between_exchanges() {
            *this.at_boundary = true;
        }
        this.io.poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_pending(cx))?;
        self.project().io.poll_shutdown(cx)
    }
}

/// How every client-error head starts; anything else is not looked at further.
const ERROR_HEAD: &[u8] = b"HTTP/1.1 4";

/// The full answer to put in place of `head`, when `head` is one of hyper's bare error answers.
fn shaped_answer(head: &[u8]) -> Option<Bytes> {
    if !head.starts_with(ERROR_HEAD) {
        return None;
    }
    let error = match head.get(9..12)? {
        b"400" => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request could not be parsed as HTTP.",
        ),
        b"414" => ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            "The request's URI is longer than this server accepts.",
        ),
        b"431" => ApiError::header_fields_too_large(),
        _ => return None,
    };
    // A bare head, ending the write, without a request id.
    let head = std::str::from_utf8(head.strip_suffix(b"\r\n\r\n")?).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let kept: Vec<&str> = lines
        .filter(|line| !starts_with_name(line, "content-length:"))
        .collect();
    if kept
        .iter()
        .any(|line| starts_with_name(line, "x-request-id:"))
    {
        return None;
    }
    let id = RequestId::fresh();
    tracing::debug!(request_id = %id, status = %status_line, "hyper refused an unparsable request");
    let body = error.body_bytes(id.as_str());
    let mut answer = format!(
        "{status_line}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         x-request-id: {id}\r\nx-content-type-options: nosniff\r\n",
        body.len()
    )
    .into_bytes();
    for line in kept {
        answer.extend_from_slice(line.as_bytes());
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(&body);
    Some(Bytes::from(answer))
}

fn starts_with_name(line: &str, name: &str) -> bool {
    line.as_bytes()
        .get(..name.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(name.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_431_gets_the_error_shape_and_keeps_its_other_headers() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Sat, 21 Nov 2026 16:00:00 GMT\r\n\r\n";
        let answer = shaped_answer(head).expect("replaced");
        let text = std::str::from_utf8(&answer).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(head.contains("\r\nconnection: close"));
        assert!(head.contains("\r\ndate: Sat, 21 Nov 2026 16:00:00 GMT"));
        assert!(head.contains("\r\nx-content-type-options: nosniff"));
        assert!(!head.contains("content-length: 0"));
        assert!(head.contains(&format!("\r\ncontent-length: {}", body.len())));
        let id = head
            .lines()
            .find_map(|line| line.strip_prefix("x-request-id: "))
            .unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["code"], "header_fields_too_large");
        assert_eq!(body["requestId"], id);
    }

    #[test]
    fn the_apps_own_answers_pass_untouched() {
        // Ours always carry a request id, a body or both.
        assert!(shaped_answer(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(shaped_answer(b"HTTP/1.1 400 Bad Request\r\nx-request-id: abc\r\n\r\n").is_none());
        assert!(shaped_answer(
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\nx-request-id: a\r\n\r\n{}"
        )
        .is_none());
        assert!(shaped_answer(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(shaped_answer(b"HTTP/1.1 4").is_none());
    }
}
