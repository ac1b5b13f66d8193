//! Arrows only go down (DESIGN.md "Layout", issue 23): reads every `.rs` file under `firmware/src`, finds the
//! room of each (its top-level module), collects the references that cross rooms (`use crate::room::...`,
//! inline paths like `crate::system::clock::unix_now()`, `super::` paths that climb out of a room) in non-test
//! code, and fails on an arrow the table below does not allow, or on rooms that import each other in a cycle.
//!
//! Test code is skipped: files declared under `#[cfg(test)] mod name;` and items under `#[cfg(test)]`.
//! Comments and string literals are skipped (a doc link is not an arrow).
//!
//! `cargo test -p hearth --test layering -- --nocapture` prints the room-to-room table (reference counts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top: the entry points and the wiring. They may use any room (and each other, without a cycle); no room
/// may use them.
const TOP: &[&str] = &["main", "lib", "serve", "init", "command"];

/// Room → the rooms it may use (DESIGN.md "Layout"). A room missing here fails the test: add it with its arrows.
const ALLOWED: &[(&str, &[&str])] = &[
    ("http", &["auth", "stream", "library", "state", "system", "remote", "dlna", "update", "wire", "calendar"]),
    ("stream", &["library", "state", "system", "wire", "calendar"]),
    ("dlna", &["library", "stream", "auth", "state", "system", "wire", "calendar"]),
    ("auth", &["state", "system", "wire"]),
    // Plex's GDM discovery on UDP 32414: the access rule, the state, interfaces and the watchdog's beat.
    ("gdm", &["auth", "state", "system"]),
    ("library", &["state", "system"]),
    // wire: XML escaping for SOAP arguments, a certificate's validity for ACME renewals (leaves that use nothing).
    ("remote", &["state", "system", "wire"]),
    // Signed bundles, the slots, U-Boot's boot state, confirm and rollback (issue 19).
    ("update", &["state", "system"]),
    ("state", &["store", "system"]),
    ("store", &[]),
    // The flash backends of a board (system::flash) open the store's backends; the start of a run writes the
    // reset reasons and safe mode into the state (system::reset). The state uses neither. The log line's RFC 3339
    // time comes from wire's calendar (a leaf that uses nothing).
    ("system", &["store", "state", "wire"]),
    // HTTP/1.1 framing shared by http and dlna: the head, percent-decoding, XML escaping, dates.
    ("wire", &["calendar"]),
    // Unix days ↔ civil dates: a leaf.
    ("calendar", &[]),
];

/// One reference from a file in one room to another room.
#[derive(Clone, Debug)]
struct Arrow {
    from: String,
    to: String,
    file: String,
    line: usize,
    path: String,
}

#[test]
fn c_1_1_arrows_only_go_down() {
    // HEARTH_LAYERING_SRC reads another tree (an old commit's `src`, for the before → after count).
    let src = std::env::var_os("HEARTH_LAYERING_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let arrows = collect(&src);
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();

    let mut table: BTreeMap<(String, String), usize> = BTreeMap::new();
    for a in &arrows {
        *table.entry((a.from.clone(), a.to.clone())).or_default() += 1;
    }
    println!("room -> room: references in non-test code");
    for ((from, to), n) in &table {
        println!("  {from:>8} -> {to:<8} {n}");
    }

    let mut wrong = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in &arrows {
        let ok = if TOP.contains(&a.from.as_str()) {
            true
        } else if TOP.contains(&a.to.as_str()) {
            false
        } else {
            match allowed.get(a.from.as_str()) {
                Some(to) => to.contains(&a.to.as_str()),
                None => false,
            }
        };
        graph.entry(a.from.clone()).or_default().insert(a.to.clone());
        if !ok {
            wrong.push(a);
        }
    }
    let unknown: BTreeSet<&str> = arrows
        .iter()
        .flat_map(|a| [a.from.as_str(), a.to.as_str()])
        .filter(|r| !TOP.contains(r) && !allowed.contains_key(r))
        .collect();
    let cycles = cycles(&graph);

    let mut report = String::new();
    for r in &unknown {
        report += &format!("room {r:?} is not in the table of tests/layering.rs: add it with its arrows\n");
    }
    for a in &wrong {
        report += &format!("{}:{}: {} -> {} runs the wrong way ({})\n", a.file, a.line, a.from, a.to, a.path);
    }
    for c in &cycles {
        report += &format!("rooms import each other in a cycle: {}\n", c.join(" -> "));
    }
    println!("wrong-way arrows: {}, cycles: {}", wrong.len(), cycles.len());
    assert!(report.is_empty(), "arrows must only go down (DESIGN.md \"Layout\"):\n{report}");
}

/// The checker's own rules, on small inputs: a test that cannot fail proves nothing.
#[test]
fn the_reader_sees_what_the_compiler_sees() {
    let code = "use crate::http::conn::{Head, read_head};\n\
                // crate::serve::random_id() in a comment is no arrow\n\
                let s = \"crate::serve in a string\";\n\
                use crate::{state::{self, Handle}, system};\n\
                fn f() { let t = crate::http::tls::unix_now(); }\n\
                #[cfg(test)]\n\
                mod tests { use crate::serve::random_id; }\n\
                use super::super::remote::Config;\n";
    let refs = references(code, &["dlna".into(), "http".into()]);
    let found: Vec<(usize, &str)> = refs.iter().map(|(l, r, _)| (*l, r.as_str())).collect();
    assert_eq!(found, vec![(1, "http"), (4, "state"), (4, "system"), (5, "http"), (8, "remote")]);
}

fn collect(src: &Path) -> Vec<Arrow> {
    let mut files = Vec::new();
    walk(src, &mut files);
    let test_files = test_only_files(src, &files);
    let mut arrows = Vec::new();
    for file in &files {
        if test_files.contains(file) {
            continue;
        }
        let rel = file.strip_prefix(src).unwrap();
        let module = module_path(rel);
        let room = module[0].clone();
        let text = std::fs::read_to_string(file).unwrap();
        for (line, to, path) in references(&text, &module) {
            if to != room {
                arrows.push(Arrow {
                    from: room.clone(),
                    to,
                    file: rel.to_string_lossy().into_owned(),
                    line,
                    path,
                });
            }
        }
    }
    arrows
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The module path of a file: `auth/mod.rs` → [auth], `http/plex/listing.rs` → [http, plex, listing],
/// `main.rs` → [main].
fn module_path(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" {
        parts.push(stem.to_string());
    }
    parts
}

/// Files declared as `#[cfg(test)] [#[path = "..."]] mod name;`.
fn test_only_files(src: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for file in files {
        let text = strip(&std::fs::read_to_string(file).unwrap());
        let dir = file.parent().unwrap();
        let is_mod_rs = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let own_dir = if is_mod_rs { dir.to_path_buf() } else { dir.join(file.file_stem().unwrap()) };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, l) in lines.iter().enumerate() {
            if *l != "#[cfg(test)]" {
                continue;
            }
            let mut path_attr = None;
            let mut j = i + 1;
            while j < lines.len() && lines[j].starts_with("#[") {
                if let Some(p) = lines[j].strip_prefix("#[path = \"").and_then(|r| r.strip_suffix("\"]")) {
                    path_attr = Some(p.to_string());
                }
                j += 1;
            }
            let Some(decl) = lines.get(j).and_then(|l| l.strip_prefix("mod ").or_else(|| l.strip_prefix("pub mod "))) else {
                continue;
            };
            let Some(name) = decl.strip_suffix(';') else { continue };
            match path_attr {
                Some(p) => {
                    out.insert(dir.join(p));
                }
                None => {
                    out.insert(own_dir.join(format!("{name}.rs")));
                    out.insert(own_dir.join(name).join("mod.rs"));
                }
            }
        }
    }
    let _ = src;
    out
}

/// Blanks out comments, string and char literals (keeping line breaks), so only code is read.
/// The strings the test file reads keep their `"` and `#[path = "..."]` is read before stripping by lines.
fn strip(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep_nl = |c: char, out: &mut String| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    keep_nl(b[i], &mut out);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !b.get(i.wrapping_sub(1)).is_some_and(|p| p.is_alphanumeric() || *p == '_') {
            // Raw string r"..." / r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            out.push('"');
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                keep_nl(b[j], &mut out);
                j += 1;
            }
            out.push('"');
            i = j;
        } else if c == '"' {
            // A path attribute keeps its string: it names a file.
            let keep = out.trim_end().ends_with("#[path =");
            out.push('"');
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if keep { out.push(b[i]) } else { keep_nl(b[i], &mut out) }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if next == Some('\\') {
                let mut j = i + 3;
                while j < b.len() && b[j] != '\'' {
                    j += 1;
                }
                out.push_str("' '");
                i = j + 1;
            } else if b.get(i + 2) == Some(&'\'') {
                out.push_str("' '");
                i += 3;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// (line, room, path) of every reference to another module's room in the non-test code of one file.
/// `module` is the file's module path (for `super::`).
fn references(text: &str, module: &[String]) -> Vec<(usize, String, String)> {
    let code = skip_test_items(&strip(text));
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        if b[i] == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        let boundary = i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_' || b[i - 1] == ':' || b[i - 1] == '$');
        if boundary && starts(&b, i, "crate::") {
            let (items, _) = path_heads(&b, i + "crate::".len());
            for (room, path) in items {
                out.push((line, room, format!("crate::{path}")));
            }
            i += "crate::".len();
            continue;
        }
        if boundary && starts(&b, i, "super::") {
            let mut j = i;
            let mut ups = 0;
            while starts(&b, j, "super::") {
                ups += 1;
                j += "super::".len();
            }
            // Climbing to the crate root: the next name is a room.
            if ups >= module.len() {
                let (items, _) = path_heads(&b, j);
                for (room, path) in items {
                    out.push((line, room, format!("{}{path}", "super::".repeat(ups))));
                }
            }
            i = j;
            continue;
        }
        i += 1;
    }
    out
}

fn starts(b: &[char], i: usize, s: &str) -> bool {
    s.chars().enumerate().all(|(k, c)| b.get(i + k) == Some(&c))
}

/// The first names of the paths at `i`: `http::tls::x` → (http, "http::tls::x"); `{state::X, system}` → both.
fn path_heads(b: &[char], i: usize) -> (Vec<(String, String)>, usize) {
    let mut j = i;
    while b.get(j).is_some_and(|c| c.is_whitespace()) {
        j += 1;
    }
    if b.get(j) == Some(&'{') {
        // A group: split at the commas of depth 1.
        let mut depth = 0;
        let mut start = j + 1;
        let mut out = Vec::new();
        while j < b.len() {
            match b[j] {
                '{' => depth += 1,
                '}' | ',' if depth == 1 => {
                    let (mut items, _) = path_heads(b, start);
                    out.append(&mut items);
                    start = j + 1;
                    if b[j] == '}' {
                        break;
                    }
                }
                '}' => depth -= 1,
                _ => {}
            }
            j += 1;
        }
        return (out, j);
    }
    let name_end = (j..b.len()).find(|&k| !(b[k].is_alphanumeric() || b[k] == '_')).unwrap_or(b.len());
    let name: String = b[j..name_end].iter().collect();
    if name.is_empty() || name == "self" || name == "super" || name.chars().next().unwrap().is_uppercase() {
        // `crate::VERSION` or `crate::{self}`: the crate root, not a room.
        return (Vec::new(), name_end);
    }
    let path_end = (j..b.len()).find(|&k| !(b[k].is_alphanumeric() || b[k] == '_' || b[k] == ':')).unwrap_or(b.len());
    let path: String = b[j..path_end].iter().collect();
    (vec![(name, path)], path_end)
}

/// Blanks out every item under `#[cfg(test)]` (an inline `mod tests { ... }`, a test-only `use` or fn),
/// keeping line breaks.
fn skip_test_items(code: &str) -> String {
    let b: Vec<char> = code.chars().collect();
    let mut out: Vec<char> = b.clone();
    let mut i = 0;
    let marker: Vec<char> = "#[cfg(test)]".chars().collect();
    while i < b.len() {
        if b[i..].starts_with(&marker) {
            // Blank to the end of the next item: a `;` at depth 0 or the closing brace of its block.
            let mut j = i;
            let mut depth = 0i32;
            let mut after_attr = false;
            while j < b.len() {
                match b[j] {
                    '[' | '(' if !after_attr => {}
                    ']' if !after_attr => after_attr = true,
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ';' if depth == 0 && after_attr => break,
                    _ => {}
                }
                j += 1;
            }
            for c in out.iter_mut().take((j + 1).min(b.len())).skip(i) {
                if *c != '\n' {
                    *c = ' ';
                }
            }
            i = j + 1;
            continue;
        }
        i += 1;
    }
    out.into_iter().collect()
}

/// Each group of rooms that reach one another, as one cycle through the group's first room
/// (e.g. `auth -> http -> auth`).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reach = |from: &str| -> BTreeMap<String, String> {
        // Breadth-first: every reachable room with the room it was reached from.
        let mut prev: BTreeMap<String, String> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([from.to_string()]);
        while let Some(r) = queue.pop_front() {
            for n in graph.get(&r).into_iter().flatten() {
                if !prev.contains_key(n) {
                    prev.insert(n.clone(), r.clone());
                    queue.push_back(n.clone());
                }
            }
        }
        prev
    };
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for room in graph.keys() {
        if seen.contains(room) {
            continue;
        }
        let prev = reach(room);
        if !prev.contains_key(room) {
            continue;
        }
        // Walk back from the room to itself.
        let mut path = vec![room.clone()];
        let mut at = prev[room].clone();
        while at != *room {
            path.push(at.clone());
            at = prev[&at].clone();
        }
        path.push(room.clone());
        path.reverse();
        seen.extend(path.iter().cloned());
        out.push(path);
    }
    out
}
