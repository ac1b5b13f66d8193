//! The one JSON body reader of the API (`/api/v1/...`): every handler that takes a body reads it here.
//!
//! Owns: the size limit ([`MAX_BODY`]) and telling the ways a body can fail apart, each with its own answer:
//!
//! | what happened                                    | answer                                              |
//! |--------------------------------------------------|-----------------------------------------------------|
//! | `Content-Length` or the bytes exceed `MAX_BODY`  | 413, the limit in words                             |
//! | the client stopped sending (closed, cut off)     | 400 "the body ended before it was complete" (no 413)|
//! | the body did not arrive in time                  | 408                                                 |
//! | not JSON, wrong shape, an unknown field          | 400 with serde's reason, line and column            |
//! | empty where a body is needed                     | 400 "this needs a JSON body"                        |
//!
//! A wrong `Content-Type` never reaches a handler: the door refuses it with 415 (`doors::body_type`).
//! Every request type is `#[serde(deny_unknown_fields)]`, so a misspelt field is a 400 naming it (docs/api.md),
//! never a silent no-op.
//! Must not touch: what a body means (the handlers and their rooms) or the state.

use super::MAX_BODY;
use super::refused::Refused;
use bytes::Bytes;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::{Request, StatusCode, header};
use serde::de::DeserializeOwned;

/// Why a request body could not be used. Each turns into one status and sentence ([`Refused`]).
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than [`MAX_BODY`] (declared or sent).
    TooLarge,
    /// The body stopped before its end: the client went away or the connection broke.
    Incomplete,
    /// The body did not arrive within the connection's time limit.
    TimedOut,
    /// No body where one is needed.
    Empty,
    /// Not the JSON this route takes; serde's reason (with line and column) or, for bodies that carry
    /// secrets, a sentence that quotes nothing of the body.
    Malformed(String),
}

impl From<BodyError> for Refused {
    fn from(e: BodyError) -> Refused {
        match e {
            BodyError::TooLarge => Refused::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The request body is larger than {} KiB; send less.", MAX_BODY / 1024),
            ),
            BodyError::Incomplete => {
                Refused::bad("The request body ended before it was complete (the connection closed); nothing was changed.")
            }
            BodyError::TimedOut => Refused::new(
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time; nothing was changed. Send it again.",
            ),
            BodyError::Empty => Refused::bad("This needs a JSON body."),
            BodyError::Malformed(m) => Refused::bad(m),
        }
    }
}

/// Whether serde's reason may be echoed: [`Quote::Never`] for bodies that carry a private key or a password
/// whose value serde could quote (its "invalid type: string ..." messages do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    /// Echo serde's reason (line, column, what was expected).
    Reason,
    /// Echo only syntax errors and field names (unknown, missing, duplicate field), never a value.
    Never,
}

/// Read the whole body (at most [`MAX_BODY`]); an empty body is returned empty.
pub async fn read<B>(req: &mut Request<B>) -> Result<Bytes, BodyError>
where
    B: hyper::body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(BodyError::TooLarge);
    }
    match Limited::new(req.body_mut(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(classify(&*e)),
    }
}

/// Which [`BodyError`] a failed read is: over the limit, timed out, or cut off (anything else the transport
/// says: a reset, an early close, a broken chunk).
fn classify(e: &(dyn std::error::Error + 'static)) -> BodyError {
    if e.downcast_ref::<LengthLimitError>().is_some() {
        return BodyError::TooLarge;
    }
    if let Some(h) = e.downcast_ref::<hyper::Error>()
        && h.is_timeout()
    {
        return BodyError::TimedOut;
    }
    BodyError::Incomplete
}

/// Read and parse a JSON body of type `T` (which is `#[serde(deny_unknown_fields)]`), echoing serde's reason.
pub async fn json<T, B>(req: &mut Request<B>) -> Result<T, BodyError>
where
    T: DeserializeOwned,
    B: hyper::body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    json_quoting(req, Quote::Reason).await
}

/// [`json`] with a choice of what the error may echo ([`Quote`]).
pub async fn json_quoting<T, B>(req: &mut Request<B>, quote: Quote) -> Result<T, BodyError>
where
    T: DeserializeOwned,
    B: hyper::body::Body + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let bytes = read(req).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(BodyError::Empty);
    }
    parse(&bytes, quote)
}

/// Parse bytes already read as `T`, with the sentence a person can act on.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], quote: Quote) -> Result<T, BodyError> {
    // serde_path_to_error says which field a wrong type or value is in (`action`, `folders[0].path`): serde's
    // own message names the field only for unknown, missing and duplicate fields.
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        BodyError::Malformed(describe(e.inner(), (path != ".").then_some(path.as_str()), quote))
    })?;
    de.end().map_err(|e| BodyError::Malformed(describe(&e, None, quote)))?;
    Ok(value)
}

/// serde's reason, as a sentence: "The request body is not the JSON expected here: unknown field `colour`,
/// expected one of `name`, `kind` at line 1 column 9." With the field's path when serde's reason does not name
/// it: "… here: in `action`: unknown variant `explode`, expected one of `reboot`, `poweroff`, `halt` …". A body
/// that may carry a secret never has a value echoed (`Quote::Never`): only the field's name and the position.
fn describe(e: &serde_json::Error, path: Option<&str>, quote: Quote) -> String {
    let reason = e.to_string();
    let names_a_field = ["unknown field", "missing field", "duplicate field"].iter().any(|p| reason.starts_with(p));
    let safe = quote == Quote::Reason || e.classify() != serde_json::error::Category::Data || names_a_field;
    let field = match path {
        Some(p) if !names_a_field => format!("in `{p}`: "),
        _ => String::new(),
    };
    if safe {
        format!("The request body is not the JSON expected here: {field}{reason}.")
    } else {
        let which = match path {
            Some(p) => format!("the field `{p}`"),
            None => "a field".to_string(),
        };
        format!(
            "The request body is not the JSON expected here: {which} has the wrong type or value (at line {} column {}).",
            e.line(),
            e.column()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use hyper::body::Frame;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Ask {
        name: String,
        #[serde(default)]
        pin: Option<String>,
    }

    fn request(body: &'static str) -> Request<Full<Bytes>> {
        Request::new(Full::new(Bytes::from_static(body.as_bytes())))
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn an_unknown_field_is_refused_by_name_with_its_place() {
        let e = run(json::<Ask, _>(&mut request(r#"{"name": "Kid", "colour": 1}"#))).unwrap_err();
        let BodyError::Malformed(m) = e else { panic!("{e:?}") };
        assert!(m.contains("unknown field `colour`") && m.contains("line 1 column"), "{m}");
    }

    #[test]
    fn malformed_json_says_where_and_what_was_expected() {
        let BodyError::Malformed(m) = run(json::<Ask, _>(&mut request("{\"name\": "))).unwrap_err() else { panic!() };
        assert!(m.contains("line 1 column 9"), "{m}");
        let BodyError::Malformed(m) = run(json::<Ask, _>(&mut request(r#"{"name": 5}"#))).unwrap_err() else { panic!() };
        assert!(m.contains("expected a string"), "{m}");
        assert_eq!(run(json::<Ask, _>(&mut request("  "))).unwrap_err(), BodyError::Empty);
    }

    #[test]
    fn a_secret_value_is_never_quoted() {
        let BodyError::Malformed(m) = parse::<Ask>(br#"{"name": "x", "pin": 12345}"#, Quote::Never).unwrap_err() else {
            panic!()
        };
        assert!(!m.contains("12345") && m.contains("line 1"), "{m}");
        let BodyError::Malformed(m) = parse::<Ask>(br#"{"name": "x", "key": "s3cret"}"#, Quote::Never).unwrap_err() else {
            panic!()
        };
        assert!(m.contains("unknown field `key`") && !m.contains("s3cret"), "{m}");
    }

    #[test]
    fn too_large_by_header_or_by_bytes_is_413() {
        let mut r = request("{}");
        r.headers_mut().insert(header::CONTENT_LENGTH, (MAX_BODY + 1).to_string().parse().unwrap());
        assert_eq!(run(read(&mut r)).unwrap_err(), BodyError::TooLarge);
        let big: &'static str = Box::leak(" ".repeat(MAX_BODY + 1).into_boxed_str());
        assert_eq!(run(read(&mut request(big))).unwrap_err(), BodyError::TooLarge);
        let refused = Refused::from(BodyError::TooLarge);
        assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A body that sends a first piece and then breaks, like a client that went away mid-body.
    struct CutOff(bool);

    impl hyper::body::Body for CutOff {
        type Data = Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            let first = !std::mem::replace(&mut self.0, true);
            std::task::Poll::Ready(Some(if first {
                Ok(Frame::data(Bytes::from_static(b"{\"name\"")))
            } else {
                Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "peer went away"))
            }))
        }
    }

    /// Review §1.2: a client that went away is not told its body was too large.
    #[test]
    fn a_body_cut_off_is_not_called_too_large() {
        let mut req = Request::new(CutOff(false));
        let e = run(json::<Ask, _>(&mut req)).unwrap_err();
        assert_eq!(e, BodyError::Incomplete);
        let refused = Refused::from(e);
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(!refused.message.contains("larger"), "{}", refused.message);
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Power {
        action: crate::system::PowerAction,
    }

    #[test]
    fn a_wrong_value_names_its_field() {
        // The QEMU suite's malformed reboot request: serde alone says "unknown variant `explode`" and no field.
        let BodyError::Malformed(m) = parse::<Power>(br#"{"action": "explode"}"#, Quote::Reason).unwrap_err() else {
            panic!("malformed")
        };
        assert!(m.contains("`action`") && m.contains("explode"), "{m}");
        // A secret-bearing body names the field, never the value.
        let BodyError::Malformed(m) = parse::<Ask>(br#"{"name": "x", "pin": 12345}"#, Quote::Never).unwrap_err() else {
            panic!("malformed")
        };
        assert!(m.contains("`pin`") && !m.contains("12345"), "{m}");
        // Trailing bytes after the object are still refused.
        assert!(parse::<Ask>(br#"{"name": "x"} x"#, Quote::Reason).is_err());
    }
}
