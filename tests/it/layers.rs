//! The library's layering, checked from its `crate::` and `super::` paths (README, Layout): a
//! module imports only from layers below its own, no two files import each other (round
//! about or directly), and nothing below `app/` knows the command line. A folder's
//! `mod.rs` holds what its files share, so a file may use its own folder's `mod.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top to bottom; modules on one line are peers and may not import each other.
const LAYERS: &[&[&str]] = &[
    &["app"],
    &["run"],
    &["report"],
    &["summary"],
    &["result"],
    &["swarm", "workload", "backend"],
    &["metrics"],
    &["scenario"],
    &["services"],
    &["procs"],
    &["config", "wire", "token"],
    &["error"],
];

/// Every module file of `src/` (tests and `main.rs` aside): module path -> code, with the
/// `#[cfg(test)]` module at the end of a file and comment lines left out.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            let rel = path.strip_prefix(root).unwrap().with_extension("");
            let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into()).collect();
            if parts.last().map(String::as_str) == Some("mod") {
                parts.pop();
            }
            let name = parts.join("::");
            if ["lib", "main"].contains(&name.as_str()) || parts.last().unwrap() == "tests" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests {").next().unwrap();
            let code: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect();
            out.insert(name, code.join("\n"));
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// Every path a use tree starting at `text` names: `a::{b, c::{d, e}}` -> a::b, a::c::d, a::c::e.
fn paths(text: &str) -> Vec<String> {
    fn tree(chars: &[char], i: &mut usize, prefix: &str, out: &mut Vec<String>) {
        let mut path = prefix.to_string();
        loop {
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            let ident: String = chars[start..*i].iter().collect();
            if !ident.is_empty() && ident != "self" {
                path = if path.is_empty() {
                    ident
                } else {
                    format!("{path}::{ident}")
                };
            }
            if chars[*i..].starts_with(&[':', ':']) {
                *i += 2;
                if chars.get(*i) == Some(&'{') {
                    *i += 1;
                    loop {
                        while chars
                            .get(*i)
                            .is_some_and(|c| c.is_whitespace() || *c == ',')
                        {
                            *i += 1;
                        }
                        if chars.get(*i).is_none_or(|c| *c == '}') {
                            *i += 1;
                            return;
                        }
                        tree(chars, i, &path, out);
                        // Skip an `as alias`.
                        while chars.get(*i).is_some_and(|c| *c != ',' && *c != '}') {
                            *i += 1;
                        }
                    }
                }
                continue;
            }
            out.push(path);
            return;
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, "", &mut out);
    out
}

/// The module each `crate::` or `super::` path of `module`'s code lands in.
fn imports(module: &str, code: &str, known: &BTreeSet<String>) -> BTreeSet<String> {
    let parent: Vec<&str> = module.split("::").collect();
    let mut found = BTreeSet::new();
    for (marker, base) in [
        ("crate::", String::new()),
        ("super::", parent[..parent.len() - 1].join("::")),
    ] {
        for (at, _) in code.match_indices(marker) {
            let preceded = code[..at].chars().last();
            if preceded.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            for p in paths(&code[at + marker.len()..]) {
                let full = if base.is_empty() {
                    p
                } else {
                    format!("{base}::{p}")
                };
                let segs: Vec<&str> = full.split("::").collect();
                let target = (1..=segs.len())
                    .rev()
                    .map(|n| segs[..n].join("::"))
                    .find(|m| known.contains(m));
                if let Some(t) = target {
                    // A file may use its own folder's mod.rs (and its ancestors').
                    if t != module && !module.starts_with(&format!("{t}::")) {
                        found.insert(t);
                    }
                }
            }
        }
    }
    found
}

fn layer_of(module: &str) -> usize {
    let top = module.split("::").next().unwrap();
    LAYERS
        .iter()
        .position(|l| l.contains(&top))
        .unwrap_or_else(|| panic!("{top} (of {module}) is in no layer: add it to LAYERS"))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods = modules();
    let known: BTreeSet<String> = mods.keys().cloned().collect();
    mods.iter()
        .map(|(m, code)| (m.clone(), imports(m, code, &known)))
        .collect()
}

#[test]
fn the_use_tree_reader_sees_nested_groups() {
    let got = paths("a::{b, c::{d as e, f}, self};");
    assert_eq!(got, vec!["a::b", "a::c::d", "a::c::f", "a"]);
}

#[test]
fn imports_point_down_the_layers_only() {
    let mut wrong = Vec::new();
    for (m, deps) in graph() {
        let top = m.split("::").next().unwrap();
        for d in deps {
            let dtop = d.split("::").next().unwrap();
            if dtop != top && layer_of(&d) <= layer_of(&m) {
                wrong.push(format!("{m} -> {d}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports up or sideways: {wrong:#?}");
}

#[test]
fn no_two_files_import_each_other() {
    let g = graph();
    // Depth-first search for a back edge; the cycle is the stack from its target.
    fn visit(
        m: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| s == m) {
            return Some(stack[pos..].to_vec());
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        stack.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(d, g, stack, done) {
                return Some(cycle);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        let cycle = visit(m, &g, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "an import cycle: {cycle:?}");
    }
}

#[test]
fn only_the_app_layer_knows_the_command_line() {
    for (m, code) in modules() {
        if !m.starts_with("app") {
            assert!(!code.contains("clap"), "{m} mentions clap");
        }
    }
}
