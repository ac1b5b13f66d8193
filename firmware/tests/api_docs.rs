//! The route table and the API pages agree: every route in `hearth::http::routes::ROUTES` is named in
//! docs/api.md or docs/remote-api.md, and every route those pages name is in the table. A route is named as
//! `` `METHOD /path` `` (a query such as `?type=N` is ignored) or as a table row `| METHOD | `/path` |`.
//! The reflector's own routes (`hearth reflector`, its section of docs/remote-api.md) are not Hearth's.

use std::collections::BTreeSet;

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// (method, path) for each route the page names.
fn named(page: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for line in page.lines() {
        // Table rows `| GET | `/api/v1/remote` | ... |`.
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() > 3 && METHODS.contains(&cells[1]) && cells[2].starts_with("`/") {
            out.insert((cells[1].to_owned(), cells[2].trim_matches('`').to_owned()));
        }
        // Code spans `GET /path`.
        for span in line.split('`').skip(1).step_by(2) {
            if let Some((m, path)) = span.split_once(' ')
                && METHODS.contains(&m)
                && path.starts_with('/')
            {
                let path = path.split(['?', ' ']).next().unwrap();
                out.insert((m.to_owned(), path.to_owned()));
            }
        }
    }
    out
}

fn page(name: &str) -> String {
    let path = format!("{}/../docs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// What docs/api.md and docs/remote-api.md (up to its reflector section) name.
fn documented() -> BTreeSet<(String, String)> {
    let remote = page("remote-api.md");
    let remote = remote.split("\n## The reflector").next().unwrap();
    let mut all = named(&page("api.md"));
    all.extend(named(remote));
    all
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let table: BTreeSet<(String, String)> =
        hearth::http::routes::ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_owned())).collect();
    assert!(table.len() > 60, "the route table was read: {} routes", table.len());
    let mut docs = documented();
    // Answered ahead of the route table and its doors (http::conn, before the Host and secure-connection checks):
    // the CA's HTTP-01 fetch must not meet "Secure connections: Required" or a Host it does not know. Documented
    // all the same; it must stay documented.
    let ahead = ("GET".to_string(), "/.well-known/acme-challenge/{token}".to_string());
    assert!(docs.remove(&ahead), "docs/api.md no longer names the ACME HTTP-01 answer `GET {}`", ahead.1);
    let undocumented: Vec<String> = table.difference(&docs).map(|(m, p)| format!("{m} {p}")).collect();
    let missing: Vec<String> = docs.difference(&table).map(|(m, p)| format!("{m} {p}")).collect();
    assert!(
        undocumented.is_empty(),
        "routes in firmware/src/http/routes.rs that docs/api.md (or docs/remote-api.md) does not name: \
         {undocumented:#?}\nDocument each as `METHOD /path` with what it takes and answers."
    );
    assert!(
        missing.is_empty(),
        "routes the API pages name that the route table does not have: {missing:#?}\nRemove them from the page, \
         or write the path exactly as the table does (`{{id}}` for a parameter)."
    );
}

#[test]
fn the_page_reader_finds_spans_and_table_rows() {
    let page = "### `GET /a/{id}`, `PUT /a` — Owner\n| GET | `/b` | x |\n| `GET /c?type=N` | y |\nnot `POST`, \
                `/d`, `hearth serve --listen`.";
    let got: Vec<(String, String)> = named(page).into_iter().collect();
    let want = [("GET", "/a/{id}"), ("GET", "/b"), ("GET", "/c"), ("PUT", "/a")];
    assert_eq!(got, want.map(|(m, p)| (m.to_owned(), p.to_owned())));
}
