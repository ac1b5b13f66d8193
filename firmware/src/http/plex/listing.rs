//! A long MediaContainer written as it is made (R-F5): the unpaged listing of a 20,000-item section used to be
//! built whole (a node per item, then the whole XML or JSON text) and peaked at 175 MB of RSS. Here the
//! container's own attributes and the trailing nodes are made up front, and the page's nodes are made one at
//! a time from the catalog snapshot and written in chunks of about [`CHUNK`] bytes as hyper asks for them
//! (`Transfer-Encoding: chunked`). What is held while it is written is the snapshot and one chunk.
//!
//! The bytes are the same as [`container`](super::container) makes for the whole tree: XML from
//! [`Node::xml`], JSON from [`Node::json`] with the page's array put where the object's key order puts it
//! (serde_json's compact form, keys in its map order).

use super::Node;
use crate::http::{Body, Format};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::{Response, header};
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// Roughly how many bytes go out per chunk.
pub const CHUNK: usize = 64 * 1024;
/// A listing of at least this many nodes gives free heap pages back when it ends (glibc).
const TRIM_AFTER: usize = 1000;

/// The answer for the container `root` (its attributes; it has no kids of its own) whose kids are `count`
/// nodes from `kids`, all going into the JSON array `key`, and then `tail` (if any).
pub(super) fn respond(
    format: Format,
    root: Node,
    key: &'static str,
    count: usize,
    kids: impl Iterator<Item = Node> + Send + 'static,
    tail: Option<Node>,
) -> Response<Body> {
    debug_assert!(root.kids.is_empty(), "the kids come from the iterator");
    let parts = match format {
        Format::Xml => xml_parts(&root, count, tail),
        Format::Json => json_parts(&root, key, count, tail),
    };
    let ctype = match format {
        Format::Xml => "text/xml; charset=utf-8",
        Format::Json => "application/json",
    };
    let body = Listing(Mutex::new(Writing { parts, kids: Box::new(kids), format, first: true, written: 0 }));
    Response::builder().header(header::CONTENT_TYPE, ctype).body(body.boxed()).expect("valid response")
}

/// What goes out, in order.
enum Part {
    Text(String),
    /// The page's nodes, as many as the iterator gives.
    Kids,
}

fn xml_parts(root: &Node, count: usize, tail: Option<Node>) -> VecDeque<Part> {
    let mut open = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    root.xml(&mut open, 0);
    if count == 0 && tail.is_none() {
        return VecDeque::from([Part::Text(open)]);
    }
    // `<MediaContainer …/>\n` becomes `<MediaContainer …>\n`: the element has children.
    open.truncate(open.len() - "/>\n".len());
    open.push_str(">\n");
    let mut close = String::new();
    if let Some(t) = tail {
        t.xml(&mut close, 1);
    }
    close.push_str("</");
    close.push_str(root.tag);
    close.push_str(">\n");
    VecDeque::from([Part::Text(open), Part::Kids, Part::Text(close)])
}

fn json_parts(root: &Node, key: &'static str, count: usize, tail: Option<Node>) -> VecDeque<Part> {
    let serde_json::Value::Object(mut map) = root.json() else { unreachable!("a node is an object") };
    // The keys Node::json would add, in the order it adds them: the page's array, then the tail's.
    if count > 0 {
        map.insert(key.into(), serde_json::Value::Null);
    }
    if let Some(t) = &tail {
        debug_assert_ne!(t.json, key, "the tail goes into an array of its own");
        map.insert(t.json.into(), serde_json::Value::Array(vec![t.json()]));
    }
    let mut parts = VecDeque::new();
    let mut text = format!("{{{}:{{", json_text(&serde_json::Value::String(root.json.into())));
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(&json_text(&serde_json::Value::String(k.clone())));
        text.push(':');
        if count > 0 && k == key {
            text.push('[');
            parts.push_back(Part::Text(std::mem::take(&mut text)));
            parts.push_back(Part::Kids);
            text.push(']');
        } else {
            text.push_str(&json_text(v));
        }
    }
    text.push_str("}}");
    parts.push_back(Part::Text(text));
    parts
}

fn json_text(v: &serde_json::Value) -> String {
    v.to_string()
}

struct Writing {
    parts: VecDeque<Part>,
    kids: Box<dyn Iterator<Item = Node> + Send>,
    format: Format,
    /// No kid written yet (JSON puts commas between them).
    first: bool,
    /// Kids written so far.
    written: usize,
}

impl Writing {
    /// The next chunk, or None at the end.
    fn chunk(&mut self) -> Option<Bytes> {
        let mut out = String::with_capacity(CHUNK + CHUNK / 4);
        while out.len() < CHUNK {
            match self.parts.front() {
                None => break,
                Some(Part::Text(_)) => {
                    if let Some(Part::Text(t)) = self.parts.pop_front() {
                        out.push_str(&t);
                    }
                }
                Some(Part::Kids) => match self.kids.next() {
                    Some(n) => {
                        match self.format {
                            Format::Xml => n.xml(&mut out, 1),
                            Format::Json => {
                                if !self.first {
                                    out.push(',');
                                }
                                out.push_str(&json_text(&n.json()));
                            }
                        }
                        self.first = false;
                        self.written += 1;
                    }
                    None => {
                        self.parts.pop_front();
                    }
                },
            }
        }
        (!out.is_empty()).then(|| Bytes::from(out))
    }
}

impl Drop for Writing {
    /// The snapshot of a long listing is many small allocations; glibc keeps freed ones (musl returns large
    /// frees by itself). Drop the snapshot first, then give the free pages back.
    fn drop(&mut self) {
        self.kids = Box::new(std::iter::empty());
        if self.written < TRIM_AFTER {
            return;
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free heap pages; it has no preconditions.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}

/// The streaming body. The lock is never contended (hyper polls a body from one task); it only makes the
/// body `Sync`, as `http::Body` needs.
struct Listing(Mutex<Writing>);

impl hyper::body::Body for Listing {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let writing = self.get_mut().0.get_mut().unwrap_or_else(|p| p.into_inner());
        Poll::Ready(writing.chunk().map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{container, media_container};
    use super::*;

    fn kid(i: u64) -> Node {
        Node::new("Video", "Metadata")
            .a("ratingKey", i)
            .a("title", format!("Film \"{i}\" & <more>"))
            .kid(Node::new("Media", "Media").a("id", i).kid(Node::new("Part", "Part").a("key", format!("/p/{i}"))))
    }

    fn tail() -> Node {
        Node::new("Meta", "Meta").kid(Node::new("Type", "Type").a("key", "k").a("active", "1"))
    }

    fn root(n: u64) -> Node {
        media_container().a("size", n).a("totalSize", n).a("offset", 0u64).a("librarySectionTitle", "Films ünd <Co>").a("viewGroup", "movie")
    }

    async fn bytes(r: Response<Body>) -> (String, Vec<u8>) {
        let ctype = r.headers()[header::CONTENT_TYPE].to_str().unwrap().to_owned();
        (ctype, r.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    /// The streamed answer is byte for byte the built one, for XML and JSON, with and without kids and tail,
    /// and across chunk boundaries.
    #[tokio::test]
    async fn streamed_listing_is_the_built_container_byte_for_byte() {
        for n in [0u64, 1, 2, 3000] {
            for with_tail in [false, true] {
                for format in [Format::Xml, Format::Json] {
                    let mut whole = root(n);
                    for i in 0..n {
                        whole = whole.kid(kid(i));
                    }
                    if with_tail {
                        whole = whole.kid(tail());
                    }
                    let built = bytes(container(format, whole)).await;
                    let streamed =
                        bytes(respond(format, root(n), "Metadata", n as usize, (0..n).map(kid), with_tail.then(tail))).await;
                    assert_eq!(built.0, streamed.0, "content type, {n} kids, tail {with_tail}, {format:?}");
                    assert!(
                        built.1 == streamed.1,
                        "{n} kids, tail {with_tail}, {format:?}:\n{}\n---\n{}",
                        String::from_utf8_lossy(&built.1[..built.1.len().min(600)]),
                        String::from_utf8_lossy(&streamed.1[..streamed.1.len().min(600)])
                    );
                }
            }
        }
    }

    #[test]
    fn a_long_listing_goes_out_in_chunks() {
        let mut w = Writing { parts: json_parts(&root(5000), "Metadata", 5000, None), kids: Box::new((0..5000).map(kid)), format: Format::Json, first: true, written: 0 };
        let mut chunks = 0;
        while let Some(c) = w.chunk() {
            assert!(c.len() < 2 * CHUNK);
            chunks += 1;
        }
        assert!(chunks > 5, "{chunks} chunks");
    }
}
