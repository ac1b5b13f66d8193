//! SOAP 1.1 control requests (UPnP Device Architecture 1.1 §3.2) as a sans-IO parser: bytes in, an action
//! with its arguments out, or the UPnP error to answer with. Also the response and fault envelopes.
//!
//! ```text
//! POST /control/cds HTTP/1.1
//! SOAPACTION: "urn:schemas-upnp-org:service:ContentDirectory:1#Browse"
//!
//! <s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="...">
//!   <s:Body>
//!     <u:Browse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1">
//!       <ObjectID>0</ObjectID> ...            (arguments: depth 4, text only)
//!     </u:Browse>
//!   </s:Body>
//! </s:Envelope>
//! ```

use quick_xml::events::{BytesStart, Event};

/// Largest control request body read (DIDL-free requests are a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;
const MAX_ARGS: usize = 16;
const MAX_DEPTH: usize = 8;

/// An action call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// The service type from the action element's namespace.
    pub service: String,
    /// The action's name, e.g. `Browse`.
    pub name: String,
    /// The arguments in the order sent, as (name, text).
    pub args: Vec<(String, String)>,
}

impl Action {
    /// The value of the argument `name`, if the call has it.
    pub fn arg(&self, name: &str) -> Option<&str> {
        self.args.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// UPnP error codes (UDA 1.1 §3.2.2 table 3-3; ContentDirectory:1 §2.5.4 for 7xx).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    InvalidAction = 401,
    InvalidArgs = 402,
    ActionFailed = 501,
    NoSuchObject = 701,
    InvalidConnection = 706,
    BadSearchCriteria = 708,
    BadSortCriteria = 709,
}

impl Fault {
    /// The errorDescription UDA gives for the code (sent with it in the fault).
    pub fn description(self) -> &'static str {
        match self {
            Fault::InvalidAction => "Invalid Action",
            Fault::InvalidArgs => "Invalid Args",
            Fault::ActionFailed => "Action Failed",
            Fault::NoSuchObject => "No such object",
            Fault::InvalidConnection => "Invalid connection reference",
            Fault::BadSearchCriteria => "Unsupported or invalid search criteria",
            Fault::BadSortCriteria => "Unsupported or invalid sort criteria",
        }
    }
}

/// Parse a control request body. `soapaction` is the SOAPACTION header (`"<service type>#<action>"`); when
/// present it must name the same action as the body (UDA 1.1 §3.2.1).
pub fn parse(body: &[u8], soapaction: Option<&str>) -> Result<Action, Fault> {
    if body.len() > MAX_BODY {
        return Err(Fault::InvalidAction);
    }
    let text = std::str::from_utf8(body).map_err(|_| Fault::InvalidAction)?;
    // No trim_text: it would trim each piece between entity references ("A &amp; B" → "A&B").
    let mut r = quick_xml::Reader::from_str(text);
    let mut depth = 0usize;
    let mut action: Option<Action> = None;
    let mut arg: Option<(String, String)> = None;
    let mut seen_envelope = false;
    let mut seen_body = false;
    loop {
        let ev = r.read_event().map_err(|_| Fault::InvalidAction)?;
        let (ev, empty) = match ev {
            Event::Empty(e) => (Event::Start(e), true),
            other => (other, false),
        };
        match ev {
            Event::Start(_) if depth >= MAX_DEPTH => return Err(Fault::InvalidAction),
            Event::Start(e) => {
                let local = e.local_name().as_ref().to_string();
                match depth {
                    0 if local == "Envelope" => seen_envelope = true,
                    1 if local == "Body" && seen_envelope => seen_body = true,
                    1 => {} // Header: ignored
                    2 if seen_body && action.is_none() => action = Some(action_element(&e, local)),
                    3 if action.is_some() => arg = Some((local, String::new())),
                    0 => return Err(Fault::InvalidAction),
                    _ => {}
                }
                if !empty {
                    depth += 1;
                } else if depth == 3 {
                    // <Arg/>: an empty argument.
                    push_arg(&mut action, arg.take())?;
                }
            }
            Event::End(_) => {
                depth = depth.checked_sub(1).ok_or(Fault::InvalidAction)?;
                if depth == 3 {
                    push_arg(&mut action, arg.take())?;
                }
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                // A reference that is neither a character reference nor a predefined entity is refused.
                let piece = crate::wire::xml_text(&ev).ok_or(Fault::InvalidAction)?;
                if let Some((_, v)) = arg.as_mut() {
                    v.push_str(&piece);
                }
            }
            Event::Eof => break,
            Event::DocType(_) => return Err(Fault::InvalidAction),
            _ => {}
        }
        if arg.as_ref().is_some_and(|(_, v)| v.len() > MAX_BODY) {
            return Err(Fault::InvalidArgs);
        }
    }
    if depth != 0 {
        return Err(Fault::InvalidAction);
    }
    let action = action.ok_or(Fault::InvalidAction)?;
    check_soapaction(&action, soapaction)?;
    Ok(action)
}

/// The action element (depth 2 in the envelope): its local name is the action, and the namespace its prefix
/// is bound to on the element itself is the service type.
fn action_element(e: &BytesStart<'_>, local: String) -> Action {
    let prefix = e.name().prefix().map(|p| p.as_ref().to_string());
    let want = match &prefix {
        Some(p) => format!("xmlns:{p}"),
        None => "xmlns".into(),
    };
    let mut service = String::new();
    for a in e.attributes().flatten() {
        if a.key.as_ref() == want {
            service = a.value.to_string();
        }
    }
    Action { service, name: local, args: Vec::new() }
}

/// UDA 1.1 §3.2.1: a SOAPACTION header, when present, names the same action as the body, and the same service
/// when the body's action element declares one.
fn check_soapaction(action: &Action, soapaction: Option<&str>) -> Result<(), Fault> {
    if let Some(h) = soapaction {
        let h = h.trim().trim_matches('"');
        let (service, name) = h.rsplit_once('#').ok_or(Fault::InvalidAction)?;
        if name != action.name || (!action.service.is_empty() && service != action.service) {
            return Err(Fault::InvalidAction);
        }
    }
    Ok(())
}

fn push_arg(action: &mut Option<Action>, arg: Option<(String, String)>) -> Result<(), Fault> {
    if let (Some(a), Some(arg)) = (action.as_mut(), arg) {
        if a.args.len() >= MAX_ARGS {
            return Err(Fault::InvalidArgs);
        }
        a.args.push(arg);
    }
    Ok(())
}

/// A successful response (UDA 1.1 §3.2.2). Values are escaped here.
pub fn response(service: &str, action: &str, out: &[(&str, &str)]) -> String {
    let mut s = String::with_capacity(256 + out.iter().map(|(_, v)| v.len() * 5 / 4).sum::<usize>());
    s.push_str(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body>",
    );
    s.push_str(&format!("<u:{action}Response xmlns:u=\"{service}\">"));
    for (name, value) in out {
        s.push_str(&format!("<{name}>{}</{name}>", crate::wire::xml_escape(value)));
    }
    s.push_str(&format!("</u:{action}Response></s:Body></s:Envelope>\n"));
    s
}

/// A fault (UDA 1.1 §3.2.2), sent with HTTP 500.
pub fn fault(f: Fault) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><s:Fault><faultcode>s:Client</faultcode>\
         <faultstring>UPnPError</faultstring><detail><UPnPError xmlns=\"urn:schemas-upnp-org:control-1-0\">\
         <errorCode>{}</errorCode><errorDescription>{}</errorDescription></UPnPError></detail></s:Fault></s:Body>\
         </s:Envelope>\n",
        f as u16,
        f.description()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // UDA 1.1 §3.2.1 example shape, with a CDS Browse as sent by common control points.
    const BROWSE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">
  <s:Body>
    <u:Browse xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1">
      <ObjectID>0</ObjectID>
      <BrowseFlag>BrowseDirectChildren</BrowseFlag>
      <Filter>*</Filter>
      <StartingIndex>0</StartingIndex>
      <RequestedCount>10</RequestedCount>
      <SortCriteria></SortCriteria>
    </u:Browse>
  </s:Body>
</s:Envelope>"#;

    #[test]
    fn parses_an_action_with_its_arguments() {
        let a = parse(BROWSE.as_bytes(), Some("\"urn:schemas-upnp-org:service:ContentDirectory:1#Browse\"")).unwrap();
        assert_eq!(a.name, "Browse");
        assert_eq!(a.service, "urn:schemas-upnp-org:service:ContentDirectory:1");
        assert_eq!(a.arg("ObjectID"), Some("0"));
        assert_eq!(a.arg("RequestedCount"), Some("10"));
        assert_eq!(a.arg("SortCriteria"), Some(""));
        assert_eq!(a.args.len(), 6);
    }

    #[test]
    fn entities_and_empty_elements() {
        let body = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><u:Search xmlns:u="urn:schemas-upnp-org:service:ContentDirectory:1"><ContainerID>0</ContainerID><SearchCriteria>dc:title contains &quot;A &amp; B&quot; &#x41;</SearchCriteria><Filter/></u:Search></s:Body></s:Envelope>"#;
        let a = parse(body.as_bytes(), None).unwrap();
        assert_eq!(a.arg("SearchCriteria"), Some("dc:title contains \"A & B\" A"));
        assert_eq!(a.arg("Filter"), Some(""));
    }

    #[test]
    fn bad_requests_are_faults_not_panics() {
        let wrong_header = parse(BROWSE.as_bytes(), Some("\"urn:schemas-upnp-org:service:ContentDirectory:1#Search\""));
        assert_eq!(wrong_header, Err(Fault::InvalidAction));
        for bad in [
            "",
            "not xml at all",
            "<a><b></a>",
            "<s:Envelope><s:Body></s:Body></s:Envelope>",
            "<s:Envelope><s:Body><u:Browse><ObjectID>0</ObjectID>",
            "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><s:Envelope><s:Body><u:Browse><ObjectID>&a;</ObjectID></u:Browse></s:Body></s:Envelope>",
            "<s:Envelope><s:Body><u:Browse><ObjectID>&nosuch;</ObjectID></u:Browse></s:Body></s:Envelope>",
            "<Other><s:Body/></Other>",
        ] {
            assert!(parse(bad.as_bytes(), None).is_err(), "{bad}");
        }
        assert!(parse(&[0xff, 0xfe, 0x00], None).is_err());
        let deep = format!("<s:Envelope><s:Body><u:B>{}{}</u:B></s:Body></s:Envelope>", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(parse(deep.as_bytes(), None), Err(Fault::InvalidAction));
        let many: String = (0..40).map(|i| format!("<A{i}>x</A{i}>")).collect();
        let many = format!("<s:Envelope><s:Body><u:B>{many}</u:B></s:Body></s:Envelope>");
        assert_eq!(parse(many.as_bytes(), None), Err(Fault::InvalidArgs));
        assert_eq!(parse(&vec![b' '; MAX_BODY + 1], None), Err(Fault::InvalidAction));
    }

    #[test]
    fn fault_envelope_carries_the_code() {
        let f = fault(Fault::NoSuchObject);
        assert!(f.contains("<errorCode>701</errorCode>") && f.contains("<faultstring>UPnPError</faultstring>"));
        let r = response("urn:x", "Go", &[("Result", "<a&b>")]);
        assert!(r.contains("<u:GoResponse xmlns:u=\"urn:x\"><Result>&lt;a&amp;b&gt;</Result></u:GoResponse>"));
    }
}
