//! An incremental parser for server-sent events, the framing of a streamed
//! answer (see [`archipelago_api::rpc`]). Bytes go in as the network
//! delivers them — an event may be split anywhere, even inside a `\r\n` —
//! and whole events come out.
//!
//! It follows the WHATWG event-stream rules that matter here: lines end in
//! `\n`, `\r\n` or `\r`; a line starting with `:` is a comment; `field:
//! value` with one optional space after the colon; several `data:` lines
//! join with `\n`; an empty line dispatches the event; an event cut off by
//! the end of the stream is dropped. `id:` and `retry:` are ignored (a
//! client never reconnects a call).

use std::fmt;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `message` when there was none.
    pub event: String,
    pub data: String,
}

/// The stream is not valid SSE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseError(pub String);

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SseError {}

/// The longest line accepted; a node sends one JSON document per line, so
/// anything near this is a broken stream, not a big event.
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of a line not yet complete.
    pending: Vec<u8>,
    /// How many bytes of `pending` are known to hold no line end.
    scanned: usize,
    /// Whether the first line (and a byte-order mark on it) was seen.
    started: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes; returns the events they completed, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.pending.extend_from_slice(chunk);
        self.drain(false)
    }

    /// The stream ended: completes a last line that had no terminator. An
    /// event without its closing empty line is dropped, as the rules say.
    pub fn finish(&mut self) -> Result<Vec<SseEvent>, SseError> {
        let events = self.drain(true)?;
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.scanned = 0;
            self.line(&line, &mut Vec::new())?;
        }
        Ok(events)
    }

    fn drain(&mut self, at_end: bool) -> Result<Vec<SseEvent>, SseError> {
        let mut events = Vec::new();
        // `start`: where the current line begins; `from`: where to look for
        // its end (bytes before it were already searched by an earlier push).
        let mut start = 0;
        let mut from = self.scanned;
        loop {
            let Some(rel) = self.pending[from..]
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
            else {
                from = self.pending.len();
                break;
            };
            let pos = from + rel;
            let terminator = if self.pending[pos] == b'\r' {
                match self.pending.get(pos + 1) {
                    Some(b'\n') => 2,
                    Some(_) => 1,
                    // A `\r` at the end of what arrived: a `\n` may follow.
                    None if at_end => 1,
                    None => {
                        from = pos;
                        break;
                    }
                }
            } else {
                1
            };
            let line = self.pending[start..pos].to_vec();
            start = pos + terminator;
            from = start;
            self.line(&line, &mut events)?;
        }
        self.pending.drain(..start);
        self.scanned = from - start;
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(SseError(format!(
                "an event-stream line is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        Ok(events)
    }

    fn line(&mut self, line: &[u8], events: &mut Vec<SseEvent>) -> Result<(), SseError> {
        let mut line = line;
        if !self.started {
            self.started = true;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(events);
            return Ok(());
        }
        if line.first() == Some(&b':') {
            return Ok(());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| SseError("an event-stream line is not UTF-8".to_owned()))?;
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id`, `retry` and unknown fields: nothing a call needs.
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, events: &mut Vec<SseEvent>) {
        let event = self.event.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        events.push(SseEvent {
            event: event.unwrap_or_else(|| "message".to_owned()),
            data: std::mem::take(&mut self.data),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    /// Feeds `text` cut at every `step` bytes and returns all events.
    fn feed(text: &[u8], step: usize) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for chunk in text.chunks(step) {
            out.extend(p.push(chunk).unwrap());
        }
        out.extend(p.finish().unwrap());
        out
    }

    const STREAM: &[u8] = b"event: progress\ndata: {\"a\":1}\n\nevent: log\ndata: {\"b\":2}\n\nevent: response\ndata: {\"c\":3}\n\n";

    #[test]
    fn events_come_out_whole_however_the_bytes_are_split() {
        let want = vec![
            ev("progress", r#"{"a":1}"#),
            ev("log", r#"{"b":2}"#),
            ev("response", r#"{"c":3}"#),
        ];
        for step in 1..=STREAM.len() {
            assert_eq!(feed(STREAM, step), want, "chunks of {step}");
        }
    }

    #[test]
    fn crlf_and_lone_cr_end_lines_even_split_between_chunks() {
        let crlf = String::from_utf8(STREAM.to_vec())
            .unwrap()
            .replace('\n', "\r\n");
        let cr = String::from_utf8(STREAM.to_vec())
            .unwrap()
            .replace('\n', "\r");
        for text in [crlf, cr] {
            for step in 1..=text.len() {
                let got = feed(text.as_bytes(), step);
                assert_eq!(got.len(), 3, "chunks of {step}: {got:?}");
                assert_eq!(got[2], ev("response", r#"{"c":3}"#));
            }
        }
    }

    #[test]
    fn data_lines_join_with_newlines() {
        let got = feed(
            b"event: log\ndata: one\ndata:two\ndata\ndata:  three\n\n",
            4,
        );
        assert_eq!(got, vec![ev("log", "one\ntwo\n\n three")]);
    }

    #[test]
    fn comments_ids_and_unknown_fields_are_ignored() {
        let got = feed(
            b": keep-alive\n\n:another\nid: 7\nretry: 10\nfoo: bar\nevent: log\ndata: x\n\n",
            3,
        );
        assert_eq!(got, vec![ev("log", "x")]);
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_and_its_name_does_not_leak() {
        let got = feed(b"event: progress\n\ndata: y\n\n", 5);
        assert_eq!(got, vec![ev("message", "y")]);
    }

    #[test]
    fn an_event_cut_off_by_the_end_of_the_stream_is_dropped() {
        assert_eq!(feed(b"event: response\ndata: {\"c\":3}\n", 7), vec![]);
        assert_eq!(feed(b"event: response\ndata: {\"c\":3}", 7), vec![]);
        // A final `\r` completes the empty line at the end.
        assert_eq!(feed(b"data: z\r\r", 1), vec![ev("message", "z")]);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_skipped() {
        let mut text = "\u{feff}".as_bytes().to_vec();
        text.extend_from_slice(b"event: log\ndata: x\n\n");
        assert_eq!(feed(&text, 1), vec![ev("log", "x")]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = SseParser::new();
        assert!(p.push(b"data: \xff\xfe\n\n").is_err());
    }

    #[test]
    fn an_endless_line_is_an_error() {
        let mut p = SseParser::new();
        let chunk = vec![b'a'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..17 {
            if p.push(&chunk).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }
}
