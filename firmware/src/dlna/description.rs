//! The device description (UDA 1.1 §2.3), the two SCPDs (§2.5) and the icons, all served on TCP 32469.

use crate::wire::xml_escape;
use crate::state::State;

/// Where the device description is served; SSDP's LOCATION points here.
pub const PATH: &str = "/description.xml";
/// The ContentDirectory service description (SCPD).
pub const CDS_SCPD: &str = "/scpd/cds.xml";
/// The ConnectionManager service description (SCPD).
pub const CMS_SCPD: &str = "/scpd/cms.xml";
/// The ContentDirectory control URL SOAP actions are posted to.
pub const CDS_CONTROL: &str = "/control/cds";
/// The ConnectionManager control URL SOAP actions are posted to.
pub const CMS_CONTROL: &str = "/control/cms";
/// The 48×48 PNG icon the description lists (renderers show it next to the friendly name).
pub const ICON_48: &[u8] = include_bytes!("icons/hearth-48.png");
/// The 120×120 PNG icon the description lists.
pub const ICON_120: &[u8] = include_bytes!("icons/hearth-120.png");

/// The UDN: a name-based UUID (RFC 9562 §5.8 layout, version 8) from SHA-256 of the machine identifier, so it
/// stays the same across restarts and differs from the machine identifier shown to apps.
pub fn udn(machine_id: &[u8; 16]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"hearth dlna udn\0");
    ctx.update(machine_id);
    let d = ctx.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// The friendly name: the owner's choice, else `Hearth on <hostname>`.
pub fn friendly_name(state: &State) -> String {
    if !state.settings.friendly_name.trim().is_empty() {
        return state.settings.friendly_name.to_string();
    }
    let host = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "this box".into());
    format!("Hearth on {host}")
}

/// The device description XML (UDA 1.1 §2.3): friendly name, UDN, the two services and the icons.
pub fn device(state: &State) -> String {
    let udn = udn(&state.machine_id);
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<root xmlns="urn:schemas-upnp-org:device-1-0" xmlns:dlna="urn:schemas-dlna-org:device-1-0">
<specVersion><major>1</major><minor>1</minor></specVersion>
<device>
<deviceType>urn:schemas-upnp-org:device:MediaServer:1</deviceType>
<dlna:X_DLNADOC>DMS-1.50</dlna:X_DLNADOC>
<friendlyName>{name}</friendlyName>
<manufacturer>Hearth</manufacturer>
<modelDescription>Hearth media server</modelDescription>
<modelName>Hearth</modelName>
<modelNumber>{version}</modelNumber>
<serialNumber>{serial}</serialNumber>
<UDN>uuid:{udn}</UDN>
<iconList>
<icon><mimetype>image/png</mimetype><width>48</width><height>48</height><depth>24</depth><url>/icon/48.png</url></icon>
<icon><mimetype>image/png</mimetype><width>120</width><height>120</height><depth>24</depth><url>/icon/120.png</url></icon>
</iconList>
<serviceList>
<service><serviceType>urn:schemas-upnp-org:service:ContentDirectory:1</serviceType><serviceId>urn:upnp-org:serviceId:ContentDirectory</serviceId><SCPDURL>{CDS_SCPD}</SCPDURL><controlURL>{CDS_CONTROL}</controlURL><eventSubURL>/event/cds</eventSubURL></service>
<service><serviceType>urn:schemas-upnp-org:service:ConnectionManager:1</serviceType><serviceId>urn:upnp-org:serviceId:ConnectionManager</serviceId><SCPDURL>{CMS_SCPD}</SCPDURL><controlURL>{CMS_CONTROL}</controlURL><eventSubURL>/event/cms</eventSubURL></service>
</serviceList>
</device>
</root>
"#,
        name = xml_escape(&friendly_name(state)),
        version = xml_escape(crate::VERSION),
        serial = state.machine_identifier(),
    )
}

/// (argument name, is output, related state variable).
type Argument<'a> = (&'a str, bool, &'a str);
/// (variable name, data type, allowed values).
type Variable<'a> = (&'a str, &'a str, &'a [&'a str]);

fn scpd(actions: &[(&str, &[Argument])], vars: &[Variable]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<scpd xmlns=\"urn:schemas-upnp-org:service-1-0\">\
         <specVersion><major>1</major><minor>0</minor></specVersion><actionList>",
    );
    for (name, args) in actions {
        s.push_str(&format!("<action><name>{name}</name><argumentList>"));
        for (arg, out, var) in *args {
            let dir = if *out { "out" } else { "in" };
            s.push_str(&format!(
                "<argument><name>{arg}</name><direction>{dir}</direction><relatedStateVariable>{var}</relatedStateVariable></argument>"
            ));
        }
        s.push_str("</argumentList></action>");
    }
    s.push_str("</actionList><serviceStateTable>");
    for (name, ty, allowed) in vars {
        let events = if *name == "SystemUpdateID" || *name == "ContainerUpdateIDs" || *name == "SourceProtocolInfo" || *name == "SinkProtocolInfo" || *name == "CurrentConnectionIDs" { "yes" } else { "no" };
        s.push_str(&format!("<stateVariable sendEvents=\"{events}\"><name>{name}</name><dataType>{ty}</dataType>"));
        if !allowed.is_empty() {
            s.push_str("<allowedValueList>");
            for v in *allowed {
                s.push_str(&format!("<allowedValue>{v}</allowedValue>"));
            }
            s.push_str("</allowedValueList>");
        }
        s.push_str("</stateVariable>");
    }
    s.push_str("</serviceStateTable></scpd>\n");
    s
}

/// ContentDirectory:1 SCPD (the actions Hearth implements).
pub fn content_directory() -> String {
    const BROWSE: &[(&str, bool, &str)] = &[
        ("ObjectID", false, "A_ARG_TYPE_ObjectID"),
        ("BrowseFlag", false, "A_ARG_TYPE_BrowseFlag"),
        ("Filter", false, "A_ARG_TYPE_Filter"),
        ("StartingIndex", false, "A_ARG_TYPE_Index"),
        ("RequestedCount", false, "A_ARG_TYPE_Count"),
        ("SortCriteria", false, "A_ARG_TYPE_SortCriteria"),
        ("Result", true, "A_ARG_TYPE_Result"),
        ("NumberReturned", true, "A_ARG_TYPE_Count"),
        ("TotalMatches", true, "A_ARG_TYPE_Count"),
        ("UpdateID", true, "A_ARG_TYPE_UpdateID"),
    ];
    const SEARCH: &[(&str, bool, &str)] = &[
        ("ContainerID", false, "A_ARG_TYPE_ObjectID"),
        ("SearchCriteria", false, "A_ARG_TYPE_SearchCriteria"),
        ("Filter", false, "A_ARG_TYPE_Filter"),
        ("StartingIndex", false, "A_ARG_TYPE_Index"),
        ("RequestedCount", false, "A_ARG_TYPE_Count"),
        ("SortCriteria", false, "A_ARG_TYPE_SortCriteria"),
        ("Result", true, "A_ARG_TYPE_Result"),
        ("NumberReturned", true, "A_ARG_TYPE_Count"),
        ("TotalMatches", true, "A_ARG_TYPE_Count"),
        ("UpdateID", true, "A_ARG_TYPE_UpdateID"),
    ];
    scpd(
        &[
            ("GetSearchCapabilities", &[("SearchCaps", true, "SearchCapabilities")]),
            ("GetSortCapabilities", &[("SortCaps", true, "SortCapabilities")]),
            ("GetSystemUpdateID", &[("Id", true, "SystemUpdateID")]),
            ("Browse", BROWSE),
            ("Search", SEARCH),
            // Samsung's extensions (as MiniDLNA's upnpdescgen.c lists them).
            ("X_GetFeatureList", &[("FeatureList", true, "A_ARG_TYPE_Featurelist")]),
            ("X_SetBookmark", &[("CategoryType", false, "A_ARG_TYPE_CategoryType"), ("RID", false, "A_ARG_TYPE_RID"), ("ObjectID", false, "A_ARG_TYPE_ObjectID"), ("PosSecond", false, "A_ARG_TYPE_PosSec")]),
        ],
        &[
            ("SearchCapabilities", "string", &[]),
            ("SortCapabilities", "string", &[]),
            ("SystemUpdateID", "ui4", &[]),
            ("ContainerUpdateIDs", "string", &[]),
            ("A_ARG_TYPE_ObjectID", "string", &[]),
            ("A_ARG_TYPE_Result", "string", &[]),
            ("A_ARG_TYPE_SearchCriteria", "string", &[]),
            ("A_ARG_TYPE_BrowseFlag", "string", &["BrowseMetadata", "BrowseDirectChildren"]),
            ("A_ARG_TYPE_Filter", "string", &[]),
            ("A_ARG_TYPE_SortCriteria", "string", &[]),
            ("A_ARG_TYPE_Index", "ui4", &[]),
            ("A_ARG_TYPE_Count", "ui4", &[]),
            ("A_ARG_TYPE_UpdateID", "ui4", &[]),
            ("A_ARG_TYPE_Featurelist", "string", &[]),
            ("A_ARG_TYPE_CategoryType", "ui4", &[]),
            ("A_ARG_TYPE_RID", "ui4", &[]),
            ("A_ARG_TYPE_PosSec", "ui4", &[]),
        ],
    )
}

/// ConnectionManager:1 SCPD.
pub fn connection_manager() -> String {
    scpd(
        &[
            ("GetProtocolInfo", &[("Source", true, "SourceProtocolInfo"), ("Sink", true, "SinkProtocolInfo")]),
            ("GetCurrentConnectionIDs", &[("ConnectionIDs", true, "CurrentConnectionIDs")]),
            (
                "GetCurrentConnectionInfo",
                &[
                    ("ConnectionID", false, "A_ARG_TYPE_ConnectionID"),
                    ("RcsID", true, "A_ARG_TYPE_RcsID"),
                    ("AVTransportID", true, "A_ARG_TYPE_AVTransportID"),
                    ("ProtocolInfo", true, "A_ARG_TYPE_ProtocolInfo"),
                    ("PeerConnectionManager", true, "A_ARG_TYPE_ConnectionManager"),
                    ("PeerConnectionID", true, "A_ARG_TYPE_ConnectionID"),
                    ("Direction", true, "A_ARG_TYPE_Direction"),
                    ("Status", true, "A_ARG_TYPE_ConnectionStatus"),
                ],
            ),
        ],
        &[
            ("SourceProtocolInfo", "string", &[]),
            ("SinkProtocolInfo", "string", &[]),
            ("CurrentConnectionIDs", "string", &[]),
            ("A_ARG_TYPE_ConnectionStatus", "string", &["OK", "ContentFormatMismatch", "InsufficientBandwidth", "UnreliableChannel", "Unknown"]),
            ("A_ARG_TYPE_ConnectionManager", "string", &[]),
            ("A_ARG_TYPE_Direction", "string", &["Input", "Output"]),
            ("A_ARG_TYPE_ProtocolInfo", "string", &[]),
            ("A_ARG_TYPE_ConnectionID", "i4", &[]),
            ("A_ARG_TYPE_AVTransportID", "i4", &[]),
            ("A_ARG_TYPE_RcsID", "i4", &[]),
        ],
    )
}
