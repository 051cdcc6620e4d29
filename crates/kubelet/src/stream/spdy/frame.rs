//! SPDY/3 frames on the wire: the 8-byte frame headers, the control frame bodies and the
//! zlib-compressed header blocks (one compression context per direction, primed with the
//! SPDY/3 dictionary).
//!
//! ```text
//! control: |1| version(15) | type(16) | flags(8) | length(24) | body…
//! data:    |0| stream id(31)          | flags(8) | length(24) | payload…
//! header block (before compression): count(32), then per name:
//!          name length(32) name, value length(32) values joined by NUL
//! ```

use bytes::{Buf, BufMut, Bytes};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::header::{HeaderName, HeaderValue};

use super::Headers;

pub(super) const VERSION: u16 = 3;

pub(super) const TYPE_SYN_STREAM: u16 = 1;
pub(super) const TYPE_SYN_REPLY: u16 = 2;
pub(super) const TYPE_RST_STREAM: u16 = 3;
pub(super) const TYPE_SETTINGS: u16 = 4;
pub(super) const TYPE_PING: u16 = 6;
pub(super) const TYPE_GOAWAY: u16 = 7;
pub(super) const TYPE_HEADERS: u16 = 8;
pub(super) const TYPE_WINDOW_UPDATE: u16 = 9;

/// FIN on DATA, SYN_STREAM, SYN_REPLY and HEADERS.
pub(super) const FLAG_FIN: u8 = 0x01;
/// UNIDIRECTIONAL on SYN_STREAM: the opener will not receive data.
pub(super) const FLAG_UNIDIRECTIONAL: u8 = 0x02;

/// The largest payload a frame's 24-bit length can describe.
pub(super) const MAX_FRAME_LEN: usize = (1 << 24) - 1;
/// A decompressed header block larger than this ends the session (a zlib bomb guard; the
/// headers Kubernetes sends are a few dozen bytes).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// The highest stream id (31 bits).
pub(super) const MAX_STREAM_ID: u32 = 0x7fff_ffff;

/// What went wrong reading or writing a frame. Every one of these ends the session: the
/// framing or the shared compression context can no longer be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("{0}")]
    Malformed(String),
    #[error("header block: {0}")]
    Compression(String),
}

fn malformed(msg: impl Into<String>) -> FrameError {
    FrameError::Malformed(msg.into())
}

/// One decoded frame. Frames the session ignores (SETTINGS, WINDOW_UPDATE, unknown control
/// types) are still checked and decoded, so a malformed one is caught.
#[derive(Debug, PartialEq)]
pub(super) enum Frame {
    SynStream {
        id: u32,
        flags: u8,
        headers: Headers,
    },
    SynReply {
        id: u32,
        flags: u8,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Ping {
        id: u32,
    },
    GoAway {
        last_good: u32,
    },
    Headers {
        id: u32,
        flags: u8,
    },
    Data {
        id: u32,
        flags: u8,
        data: Bytes,
    },
    /// SETTINGS, WINDOW_UPDATE, or a control type this implementation does not know.
    Ignored,
}

/// The 8-byte frame header, split.
#[derive(Debug, Clone, Copy)]
pub(super) struct Head {
    /// `Some(type)` for a control frame (after checking its version), `None` for DATA.
    pub control: Option<u16>,
    /// The stream id of a DATA frame.
    pub stream: u32,
    pub flags: u8,
    pub len: usize,
}

impl Head {
    pub fn parse(b: [u8; 8]) -> Result<Head, FrameError> {
        let first = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        let flags = b[4];
        let len = u32::from_be_bytes([0, b[5], b[6], b[7]]) as usize;
        if first & 0x8000_0000 != 0 {
            let version = ((first >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(malformed(format!("unsupported SPDY version {version}")));
            }
            Ok(Head {
                control: Some((first & 0xffff) as u16),
                stream: 0,
                flags,
                len,
            })
        } else {
            Ok(Head {
                control: None,
                stream: first & MAX_STREAM_ID,
                flags,
                len,
            })
        }
    }
}

/// Reads header blocks: the peer's compression context for the whole session.
pub(super) struct Decoder {
    zlib: Decompress,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            zlib: Decompress::new(true),
        }
    }

    /// Decode the frame whose header is `head` and whose body is `body` (exactly
    /// `head.len` bytes).
    pub fn decode(&mut self, head: Head, mut body: Bytes) -> Result<Frame, FrameError> {
        let Some(kind) = head.control else {
            if head.stream == 0 {
                return Err(malformed("DATA frame on stream 0"));
            }
            return Ok(Frame::Data {
                id: head.stream,
                flags: head.flags,
                data: body,
            });
        };
        let need = |n: usize, what: &str| {
            if body.len() < n {
                Err(malformed(format!("{what} frame of {} bytes", body.len())))
            } else {
                Ok(())
            }
        };
        let exact = |n: usize, what: &str| {
            if body.len() != n {
                Err(malformed(format!("{what} frame of {} bytes", body.len())))
            } else {
                Ok(())
            }
        };
        let stream_id = |id: u32, what: &str| {
            if id == 0 {
                Err(malformed(format!("{what} on stream 0")))
            } else {
                Ok(id)
            }
        };
        match kind {
            TYPE_SYN_STREAM => {
                need(10, "SYN_STREAM")?;
                let id = body.get_u32() & MAX_STREAM_ID;
                let _associated = body.get_u32() & MAX_STREAM_ID;
                let _priority = body.get_u8() >> 5;
                let _slot = body.get_u8();
                // Decompress before validating the id: the shared context must see every block.
                let headers = self.header_block(&body)?;
                Ok(Frame::SynStream {
                    id: stream_id(id, "SYN_STREAM")?,
                    flags: head.flags,
                    headers,
                })
            }
            TYPE_SYN_REPLY => {
                need(4, "SYN_REPLY")?;
                let id = body.get_u32() & MAX_STREAM_ID;
                self.header_block(&body)?;
                Ok(Frame::SynReply {
                    id: stream_id(id, "SYN_REPLY")?,
                    flags: head.flags,
                })
            }
            TYPE_HEADERS => {
                need(4, "HEADERS")?;
                let id = body.get_u32() & MAX_STREAM_ID;
                self.header_block(&body)?;
                Ok(Frame::Headers {
                    id: stream_id(id, "HEADERS")?,
                    flags: head.flags,
                })
            }
            TYPE_RST_STREAM => {
                exact(8, "RST_STREAM")?;
                let id = body.get_u32() & MAX_STREAM_ID;
                let status = body.get_u32();
                Ok(Frame::RstStream {
                    id: stream_id(id, "RST_STREAM")?,
                    status,
                })
            }
            TYPE_SETTINGS => {
                need(4, "SETTINGS")?;
                let n = body.get_u32() as usize;
                if n.checked_mul(8) != Some(body.len()) {
                    return Err(malformed(format!(
                        "SETTINGS frame with {n} entries in {} bytes",
                        body.len()
                    )));
                }
                Ok(Frame::Ignored)
            }
            TYPE_PING => {
                exact(4, "PING")?;
                Ok(Frame::Ping { id: body.get_u32() })
            }
            TYPE_GOAWAY => {
                exact(8, "GOAWAY")?;
                let last_good = body.get_u32() & MAX_STREAM_ID;
                let _status = body.get_u32();
                Ok(Frame::GoAway { last_good })
            }
            TYPE_WINDOW_UPDATE => {
                exact(8, "WINDOW_UPDATE")?;
                Ok(Frame::Ignored)
            }
            // SPDY/3 says to ignore control frames of unknown types (CREDENTIAL, NOOP, …).
            _ => Ok(Frame::Ignored),
        }
    }

    fn header_block(&mut self, compressed: &[u8]) -> Result<Headers, FrameError> {
        let raw = self.inflate(compressed)?;
        parse_header_block(&raw)
    }

    fn inflate(&mut self, input: &[u8]) -> Result<Vec<u8>, FrameError> {
        let start = self.zlib.total_in();
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 256);
        loop {
            let consumed = (self.zlib.total_in() - start) as usize;
            let (in_before, out_before) = (self.zlib.total_in(), self.zlib.total_out());
            if out.len() == out.capacity() {
                if out.len() >= MAX_HEADER_BLOCK {
                    return Err(FrameError::Compression(format!(
                        "decompresses to more than {MAX_HEADER_BLOCK} bytes"
                    )));
                }
                out.reserve(out.len().max(256));
            }
            let rest = input.get(consumed..).unwrap_or_default();
            match self
                .zlib
                .decompress_vec(rest, &mut out, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => {
                    return Err(FrameError::Compression(
                        "the peer ended its compression stream".into(),
                    ));
                }
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(dictionary())
                        .map_err(|e| FrameError::Compression(e.to_string()))?;
                    continue;
                }
                Err(e) => return Err(FrameError::Compression(e.to_string())),
            }
            let consumed = (self.zlib.total_in() - start) as usize;
            if consumed >= input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if self.zlib.total_in() == in_before
                && self.zlib.total_out() == out_before
                && out.len() < out.capacity()
            {
                return Err(FrameError::Compression("truncated header block".into()));
            }
        }
    }
}

/// Writes frames: our compression context for the whole session.
pub(super) struct Encoder {
    zlib: Compress,
    /// The dictionary goes in before the first block (so `new` cannot fail).
    primed: bool,
    /// Scratch space for a header block before compression.
    raw: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        // Level as spdystream (zlib.BestCompression); the level is not part of the protocol.
        Encoder {
            zlib: Compress::new(Compression::best(), true),
            primed: false,
            raw: Vec::new(),
        }
    }

    pub fn syn_stream(
        &mut self,
        out: &mut Vec<u8>,
        id: u32,
        flags: u8,
        headers: &Headers,
    ) -> Result<(), FrameError> {
        let block = self.header_block(headers)?;
        control_head(out, TYPE_SYN_STREAM, flags, 10 + block.len())?;
        out.put_u32(id);
        out.put_u32(0); // associated-to stream
        out.put_u8(0); // priority 0, unused bits
        out.put_u8(0); // credential slot
        out.extend_from_slice(&block);
        Ok(())
    }

    pub fn syn_reply(
        &mut self,
        out: &mut Vec<u8>,
        id: u32,
        flags: u8,
        headers: &Headers,
    ) -> Result<(), FrameError> {
        let block = self.header_block(headers)?;
        control_head(out, TYPE_SYN_REPLY, flags, 4 + block.len())?;
        out.put_u32(id);
        out.extend_from_slice(&block);
        Ok(())
    }

    /// A HEADERS frame (only tests send one; Kubernetes never does).
    #[cfg(test)]
    pub fn headers(
        &mut self,
        out: &mut Vec<u8>,
        id: u32,
        flags: u8,
        headers: &Headers,
    ) -> Result<(), FrameError> {
        let block = self.header_block(headers)?;
        control_head(out, TYPE_HEADERS, flags, 4 + block.len())?;
        out.put_u32(id);
        out.extend_from_slice(&block);
        Ok(())
    }

    fn header_block(&mut self, headers: &Headers) -> Result<Vec<u8>, FrameError> {
        if !self.primed {
            self.zlib
                .set_dictionary(dictionary())
                .map_err(|e| FrameError::Compression(e.to_string()))?;
            self.primed = true;
        }
        self.raw.clear();
        let count =
            u32::try_from(headers.keys_len()).map_err(|_| malformed("too many header names"))?;
        self.raw.put_u32(count);
        for name in headers.keys() {
            put_len_prefixed(&mut self.raw, name.as_str().as_bytes())?;
            let mut joined = Vec::new();
            for (i, v) in headers.get_all(name).iter().enumerate() {
                if i > 0 {
                    joined.push(0);
                }
                joined.extend_from_slice(v.as_bytes());
            }
            put_len_prefixed(&mut self.raw, &joined)?;
        }
        let mut out = Vec::with_capacity(self.raw.len() + 64);
        let start = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start) as usize;
            if out.len() == out.capacity() {
                out.reserve(out.len().max(64));
            }
            let rest = self.raw.get(consumed..).unwrap_or_default();
            self.zlib
                .compress_vec(rest, &mut out, FlushCompress::Sync)
                .map_err(|e| FrameError::Compression(e.to_string()))?;
            let consumed = (self.zlib.total_in() - start) as usize;
            // A sync flush is complete once all input is in and zlib left output room unused.
            if consumed >= self.raw.len() && out.len() < out.capacity() {
                break;
            }
        }
        if out.len() > MAX_FRAME_LEN - 10 {
            return Err(malformed("header block too large for one frame"));
        }
        Ok(out)
    }
}

fn put_len_prefixed(out: &mut Vec<u8>, b: &[u8]) -> Result<(), FrameError> {
    let n = u32::try_from(b.len()).map_err(|_| malformed("header too long"))?;
    out.put_u32(n);
    out.extend_from_slice(b);
    Ok(())
}

fn control_head(out: &mut Vec<u8>, kind: u16, flags: u8, len: usize) -> Result<(), FrameError> {
    if len > MAX_FRAME_LEN {
        return Err(malformed(format!("control frame of {len} bytes")));
    }
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u32(((flags as u32) << 24) | len as u32);
    Ok(())
}

pub(super) fn rst_stream(out: &mut Vec<u8>, id: u32, status: u32) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(TYPE_RST_STREAM);
    out.put_u32(8);
    out.put_u32(id & MAX_STREAM_ID);
    out.put_u32(status);
}

pub(super) fn ping(out: &mut Vec<u8>, id: u32) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(TYPE_PING);
    out.put_u32(4);
    out.put_u32(id);
}

pub(super) fn goaway(out: &mut Vec<u8>, last_good: u32, status: u32) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(TYPE_GOAWAY);
    out.put_u32(8);
    out.put_u32(last_good & MAX_STREAM_ID);
    out.put_u32(status);
}

/// One DATA frame; `data` must fit a frame (callers cut writes far below the limit).
pub(super) fn data(out: &mut Vec<u8>, id: u32, flags: u8, data: &[u8]) {
    let len = data.len().min(MAX_FRAME_LEN);
    out.put_u32(id & MAX_STREAM_ID);
    out.put_u32(((flags as u32) << 24) | len as u32);
    out.extend_from_slice(&data[..len]);
}

fn parse_header_block(mut b: &[u8]) -> Result<Headers, FrameError> {
    let short = || malformed("truncated header block");
    if b.remaining() < 4 {
        return Err(short());
    }
    let count = b.get_u32() as usize;
    // Every entry takes at least 8 bytes: no allocation from a made-up count.
    if count > b.remaining() / 8 {
        return Err(malformed(format!("header block claims {count} headers")));
    }
    let mut headers = Headers::with_capacity(count);
    for _ in 0..count {
        let name = take_len_prefixed(&mut b).ok_or_else(short)?;
        let value = take_len_prefixed(&mut b).ok_or_else(short)?;
        // Names SPDY allows but HTTP/1 does not (":method" and the like) mean nothing to
        // Kubernetes' streaming; they are dropped rather than ending the session.
        let Ok(name) = HeaderName::from_bytes(name) else {
            tracing::debug!("spdy: dropping header with invalid name");
            continue;
        };
        for v in value.split(|&c| c == 0) {
            match HeaderValue::from_bytes(v) {
                Ok(v) => {
                    headers.append(name.clone(), v);
                }
                Err(_) => tracing::debug!(header = %name, "spdy: dropping invalid header value"),
            }
        }
    }
    if b.has_remaining() {
        return Err(malformed("trailing bytes after header block"));
    }
    Ok(headers)
}

fn take_len_prefixed<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
    if b.len() < 4 {
        return None;
    }
    let n = b.get_u32() as usize;
    if b.len() < n {
        return None;
    }
    let (v, rest) = b.split_at(n);
    *b = rest;
    Some(v)
}

/// The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00 §2.6.10.1): the
/// length-prefixed words below, then the status/date/content-type text.
fn dictionary() -> &'static [u8] {
    static DICT: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    DICT.get_or_init(|| {
        const WORDS: &[&str] = &[
            "options",
            "head",
            "post",
            "put",
            "delete",
            "trace",
            "accept",
            "accept-charset",
            "accept-encoding",
            "accept-language",
            "accept-ranges",
            "age",
            "allow",
            "authorization",
            "cache-control",
            "connection",
            "content-base",
            "content-encoding",
            "content-language",
            "content-length",
            "content-location",
            "content-md5",
            "content-range",
            "content-type",
            "date",
            "etag",
            "expect",
            "expires",
            "from",
            "host",
            "if-match",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "last-modified",
            "location",
            "max-forwards",
            "pragma",
            "proxy-authenticate",
            "proxy-authorization",
            "range",
            "referer",
            "retry-after",
            "server",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "user-agent",
            "vary",
            "via",
            "warning",
            "www-authenticate",
            "method",
            "get",
            "status",
            "200 OK",
            "version",
            "HTTP/1.1",
            "url",
            "public",
            "set-cookie",
            "keep-alive",
            "origin",
        ];
        const TAIL: &[&str] = &[
            "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505",
            "203 Non-Authoritative Information",
            "204 No Content",
            "301 Moved Permanently",
            "400 Bad Request",
            "401 Unauthorized",
            "403 Forbidden",
            "404 Not Found",
            "500 Internal Server Error",
            "501 Not Implemented",
            "503 Service Unavailable",
            "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ",
            "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT",
            "chunked,text/html,image/png,image/jpg,image/gif,application/xml,",
            "application/xhtml+xml,text/plain,text/javascript,public",
            "privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
        ];
        let mut d = Vec::with_capacity(1423);
        for w in WORDS {
            d.put_u32(w.len() as u32);
            d.extend_from_slice(w.as_bytes());
        }
        for t in TAIL {
            d.extend_from_slice(t.as_bytes());
        }
        d
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_the_spdy3_one() {
        // zlib identifies a preset dictionary by its Adler-32 (the FDICT id Go's and every
        // other SPDY/3 peer's compressor writes): 0xe3c6a7c2 for SPDY/3's 1423 bytes.
        let mut z = Compress::new(Compression::default(), true);
        let adler = z.set_dictionary(dictionary()).expect("dictionary");
        assert_eq!(dictionary().len(), 1423);
        assert_eq!(adler, 0xe3c6_a7c2);
    }

    #[test]
    fn header_blocks_share_one_context_per_direction() {
        let mut enc = Encoder::new();
        let mut dec = Decoder::new();
        let mut h = Headers::new();
        h.insert("streamtype", HeaderValue::from_static("stdout"));
        h.append("x-multi", HeaderValue::from_static("a"));
        h.append("x-multi", HeaderValue::from_static("b"));
        for id in [1u32, 3, 5] {
            let mut out = Vec::new();
            enc.syn_stream(&mut out, id, 0, &h).expect("encode");
            let head = Head::parse(out[..8].try_into().expect("8 bytes")).expect("head");
            assert_eq!(head.len, out.len() - 8);
            let frame = dec
                .decode(head, Bytes::copy_from_slice(&out[8..]))
                .expect("decode");
            assert_eq!(
                frame,
                Frame::SynStream {
                    id,
                    flags: 0,
                    headers: h.clone()
                }
            );
        }
    }

    #[test]
    fn header_block_counts_are_checked_before_allocating() {
        let mut raw = Vec::new();
        raw.put_u32(u32::MAX);
        assert!(parse_header_block(&raw).is_err());
        let mut raw = Vec::new();
        raw.put_u32(1);
        raw.put_u32(100);
        raw.extend_from_slice(b"short");
        assert!(parse_header_block(&raw).is_err());
    }
}
