//! The layout the architecture promises, checked on the source itself:
//!
//! - files of one crate do not import each other in a circle;
//! - swarm-client's `results/` imports nothing else of the crate, and its
//!   `native/` (the player and its HTTP) nothing but `native/` and
//!   `results/`: it is handed what it needs;
//! - `common` names no component;
//! - every source file is named in ARCHITECTURE.md's codemap;
//! - no source file is longer than [`MAX_LINES`].
//!
//! What does not hold yet is listed in the `KNOWN_…` lists below, each
//! entry to be removed when it is mended; an entry that no longer occurs
//! fails the test too, so the lists only shrink.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

/// Circles that are still there, each as its files (sorted).
const KNOWN_CIRCLES: &[&[&str]] = &[];

/// Imports of `native/` from the swarm around it: (file, module).
const KNOWN_NATIVE_IMPORTS: &[(&str, &str)] = &[];

/// Files longer than [`MAX_LINES`].
const KNOWN_LONG: &[&str] = &[];

/// The component crates, whose names `common` must not know.
const COMPONENTS: &[&str] = &["test-origin", "swarm-client", "hls-probe"];

/// Lines of `common` that name a component.
const KNOWN_COMPONENT_NAMES: &[&str] = &[];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The crates of the workspace: their directories.
const CRATES: &[&str] = &[
    "common",
    "test-origin",
    "swarm-client",
    "hls-probe",
    "testkit",
    "xtask",
];

/// Every `.rs` file under `dir`, relative to the workspace root, sorted.
fn sources(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(root()).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// The module path of a source file of a crate (`src/a/b.rs` → `a::b`,
/// `src/a/mod.rs` → `a`, `src/lib.rs` → ``), or `None` for a binary's own
/// root and what is not under `src/`.
fn module_of(krate: &str, file: &str) -> Option<String> {
    let rel = file.strip_prefix(&format!("{krate}/src/"))?;
    let rel = rel.strip_suffix(".rs")?;
    if rel == "lib" {
        return Some(String::new());
    }
    if rel == "main" {
        return None;
    }
    let rel = rel.strip_suffix("/mod").unwrap_or(rel);
    Some(rel.replace('/', "::"))
}

/// The text without comments (line comments and doc comments), so that a
/// path in prose is not an import.
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a `use` tree names: `a::{b, c::{d, self}}` → `a::b`, `a::c::d`, `a::c`.
fn expand(tree: &str) -> Vec<String> {
    // `X as Y` names X
    let words: Vec<&str> = tree.split_whitespace().collect();
    let mut kept = String::new();
    let mut i = 0;
    while i < words.len() {
        if words[i] == "as" {
            i += 2;
            continue;
        }
        kept.push_str(words[i]);
        i += 1;
    }
    let tree = kept;
    let Some(open) = tree.find('{') else {
        return vec![tree.trim_end_matches("::").to_owned()];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    // split on the commas at depth 0
    let (mut parts, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    let mut out = Vec::new();
    for p in parts.into_iter().filter(|p| !p.is_empty()) {
        for sub in expand(p) {
            if sub == "self" {
                out.push(prefix.to_owned());
            } else {
                out.push(format!("{prefix}::{sub}"));
            }
        }
    }
    out
}

/// The crate-local paths `text` uses (from `use` items and inline
/// `crate::`/`super::`/`self::` paths, and paths into the `children`
/// modules of `module`), as absolute module paths of the crate.
fn used_paths(text: &str, module: &str, children: &[&str]) -> BTreeSet<String> {
    let code = code(text);
    let mut raw = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("use ") {
        let boundary = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if boundary {
            raw.extend(expand(&after[..end]));
        }
        rest = &after[end.min(after.len())..];
    }
    let starts: Vec<String> = ["crate", "super", "self"]
        .iter()
        .chain(children)
        .map(|s| format!("{s}::"))
        .collect();
    for start in &starts {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(start.as_str()) {
            let boundary = i == 0
                || !(rest.as_bytes()[i - 1].is_ascii_alphanumeric()
                    || rest.as_bytes()[i - 1] == b'_'
                    || rest.as_bytes()[i - 1] == b':');
            let tail = &rest[i..];
            if !boundary {
                rest = &tail[start.len()..];
                continue;
            }
            let end = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            raw.push(tail[..end].trim_end_matches(':').to_owned());
            rest = &tail[end..];
        }
    }
    let parent = |m: &str| {
        m.rsplit_once("::")
            .map_or(String::new(), |(p, _)| p.to_owned())
    };
    raw.into_iter()
        .filter_map(|p| {
            let join = |base: &str, p: &str| {
                if base.is_empty() {
                    p.to_owned()
                } else {
                    format!("{base}::{p}")
                }
            };
            if let Some(r) = p.strip_prefix("crate::") {
                return Some(r.to_owned());
            }
            if p == "crate" {
                return Some(String::new());
            }
            if let Some(r) = p.strip_prefix("self::") {
                return Some(join(module, r));
            }
            if children
                .iter()
                .any(|c| p == *c || p.starts_with(&format!("{c}::")))
            {
                return Some(join(module, &p));
            }
            let mut base = module.to_owned();
            let mut p = p.as_str();
            let mut relative = false;
            while let Some(r) =
                p.strip_prefix("super::")
                    .or(if p == "super" { Some("") } else { None })
            {
                base = parent(&base);
                p = r;
                relative = true;
            }
            relative.then(|| if p.is_empty() { base } else { join(&base, p) })
        })
        .collect()
}

/// The names of the modules right under `module`.
fn children<'a>(modules: &'a BTreeMap<String, String>, module: &str) -> Vec<&'a str> {
    let prefix = match module {
        "" => String::new(),
        _ => format!("{module}::"),
    };
    modules
        .keys()
        .filter_map(|m| m.strip_prefix(&prefix))
        .filter(|rest| !rest.is_empty() && !rest.contains("::"))
        .collect()
}

/// The import graph of the workspace's crates: file → files it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for krate in CRATES {
        let files = sources(&root().join(krate).join("src"));
        let modules: BTreeMap<String, String> = files
            .iter()
            .filter_map(|f| module_of(krate, f).map(|m| (m, f.clone())))
            .collect();
        for f in &files {
            let Some(module) = module_of(krate, f) else {
                continue;
            };
            let text = std::fs::read_to_string(root().join(f)).unwrap();
            let mut to = BTreeSet::new();
            for path in used_paths(&text, &module, &children(&modules, &module)) {
                // the longest module the path starts with
                let mut p = path.as_str();
                loop {
                    if let Some(target) = modules.get(p) {
                        if target != f && !module.starts_with(&format!("{p}::")) && !p.is_empty() {
                            to.insert(target.clone());
                        }
                        break;
                    }
                    match p.rsplit_once("::") {
                        Some((head, _)) => p = head,
                        None => break,
                    }
                }
            }
            graph.insert(f.clone(), to);
        }
    }
    graph
}

/// The circles of `graph`: its strongly connected parts of two files or
/// more, each sorted (Tarjan).
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut part = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                part.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if part.len() > 1 {
                part.sort();
                s.out.push(part);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// `found` must be exactly `known`: new entries are regressions, missing
/// ones are mended and must leave the list.
fn same(what: &str, found: BTreeSet<String>, known: BTreeSet<String>) {
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "{what}:\n  new (mend them): {new:#?}\n  mended (take them off the list): {gone:#?}"
    );
}

#[test]
fn no_circles_between_files_of_a_crate() {
    let found = circles(&graph()).into_iter().map(|c| c.join(" ")).collect();
    let known = KNOWN_CIRCLES.iter().map(|c| c.join(" ")).collect();
    same("circles of imports", found, known);
}

#[test]
fn results_and_the_player_import_nothing_of_the_swarm() {
    let mut found = BTreeSet::new();
    for (file, to) in graph() {
        let allowed: &[&str] = if file.starts_with("swarm-client/src/results/") {
            &["swarm-client/src/results/"]
        } else if file.starts_with("swarm-client/src/native/") {
            &["swarm-client/src/native/", "swarm-client/src/results/"]
        } else {
            continue;
        };
        for t in to {
            if !allowed.iter().any(|a| t.starts_with(a)) {
                found.insert(format!("{file} -> {t}"));
            }
        }
    }
    let known = KNOWN_NATIVE_IMPORTS
        .iter()
        .map(|(f, t)| format!("{f} -> {t}"))
        .collect();
    same(
        "imports from the swarm around results/ and native/",
        found,
        known,
    );
}

#[test]
fn common_names_no_component() {
    let mut found = BTreeSet::new();
    for f in sources(&root().join("common/src")) {
        let text = std::fs::read_to_string(root().join(&f)).unwrap();
        if COMPONENTS.iter().any(|c| text.contains(c)) {
            found.insert(f);
        }
    }
    same(
        "files of common that name a component",
        found,
        KNOWN_COMPONENT_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    );
}

#[test]
fn every_source_file_is_in_the_codemap() {
    let map = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let mut missing = Vec::new();
    for krate in CRATES {
        for f in sources(&root().join(krate).join("src")) {
            let rel = f.strip_prefix(&format!("{krate}/")).unwrap();
            let name = Path::new(rel).file_name().unwrap().to_str().unwrap();
            let dir = Path::new(rel).parent().unwrap().to_str().unwrap();
            let named = match name {
                // a crate's root: the crate is its entry
                "lib.rs" | "main.rs" => map.contains(&format!("`{krate}/`")),
                // a module's root: its directory
                "mod.rs" => {
                    map.contains(&format!("`{dir}/`")) || map.contains(&format!("{dir}/mod.rs"))
                }
                _ => map.contains(&format!("`{rel}`")) || map.contains(&format!("`{name}`")),
            };
            if !named {
                missing.push(f);
            }
        }
    }
    assert!(
        missing.is_empty(),
        "source files ARCHITECTURE.md's codemap does not name:\n{missing:#?}"
    );
}

#[test]
fn no_source_file_is_longer_than_800_lines() {
    let mut found = BTreeSet::new();
    for krate in CRATES {
        for f in sources(&root().join(krate).join("src")) {
            let lines = std::fs::read_to_string(root().join(&f))
                .unwrap()
                .lines()
                .count();
            if lines > MAX_LINES {
                found.insert(f);
            }
        }
    }
    same(
        &format!("files over {MAX_LINES} lines"),
        found,
        KNOWN_LONG.iter().map(|s| (*s).to_owned()).collect(),
    );
}

#[test]
fn the_import_reader_reads_use_trees_and_relative_paths() {
    assert_eq!(
        expand("crate::results::{self, merge::Merger, figures::{A, B as C}}"),
        [
            "crate::results",
            "crate::results::merge::Merger",
            "crate::results::figures::A",
            "crate::results::figures::B",
        ]
    );
    let used = used_paths(
        "use super::player::{Kind, Next};\nuse crate::results::Recorder; // crate::engine in a comment\nfn f() { super::super::log::warn(); abr::pick(); my_abr::x(); }",
        "native::viewer",
        &["abr"],
    );
    assert_eq!(
        used.into_iter().collect::<Vec<_>>(),
        [
            "log::warn",
            "native::player",
            "native::player::Kind",
            "native::player::Next",
            "native::viewer::abr::pick",
            "results::Recorder"
        ]
    );
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"]),
        ("c", &["a"]),
        ("d", &["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
    .collect();
    assert_eq!(circles(&g), [vec!["a", "b", "c"]]);
}
