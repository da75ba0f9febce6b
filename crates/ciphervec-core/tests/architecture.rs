//! The module structure `ARCHITECTURE.md` describes is the one the code has: its table lists,
//! for each top-level module, every other module its code refers to, and that graph has no
//! cycle. The core never depends on napi.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module (which may use anything through the crate
/// root) and without comments (which may name any module).
fn code_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    if test_only(path) {
        return String::new();
    }
    let end = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..end].lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Whether `path` is a module its parent declares only for tests (`#[cfg(test)] mod x;`, or
/// with the `test-util` feature).
fn test_only(path: &Path) -> bool {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let parent = path.parent().unwrap();
    let Ok(parent_code) = std::fs::read_to_string(parent.join("mod.rs")) else { return false };
    let cfgs = ["#[cfg(test)]", "#[cfg(any(test, feature = \"test-util\"))]"];
    let declared = |cfg: &str, vis: &str| parent_code.contains(&format!("{cfg}\n{vis}mod {stem};"));
    stem != "mod" && cfgs.iter().any(|cfg| ["", "pub(crate) "].iter().any(|vis| declared(cfg, vis)))
}

/// The top-level modules `path` names after `crate::`, besides `module` itself.
fn references(code: &str, module: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        assert!(
            modules.contains(&name) || rest.starts_with('{'),
            "`crate::{name}` in module {module}: refer to items through their module, not the crate root"
        );
        assert!(!rest.starts_with('{'), "`crate::{{...}}` in module {module}: one module per `use`");
        if name != module {
            found.insert(name);
        }
    }
    found
}

/// The graph the code has.
fn code_graph() -> Graph {
    let src = crate_dir().join("src");
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        if stem != "lib" {
            modules.insert(stem);
        }
    }
    let mut graph = Graph::new();
    for module in &modules {
        let mut files = Vec::new();
        let dir = src.join(module);
        if dir.is_dir() {
            rust_files(&dir, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        let uses = graph.entry(module.clone()).or_default();
        for file in files {
            uses.extend(references(&code_of(&file), module, &modules));
        }
    }
    graph
}

/// The graph `ARCHITECTURE.md`'s table states: `| \`module\` | owns | \`a\`, \`b\` |`.
fn documented_graph() -> Graph {
    let doc = std::fs::read_to_string(crate_dir().join("../../ARCHITECTURE.md")).unwrap();
    let section = doc.split("## Core modules").nth(1).expect("ARCHITECTURE.md has a 'Core modules' section");
    let mut graph = Graph::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.len() != 3 || !cells[0].starts_with('`') {
            continue;
        }
        let names = |cell: &str| -> BTreeSet<String> {
            cell.split(',')
                .map(|n| n.trim().trim_matches('`').to_string())
                .filter(|n| !n.is_empty() && n != "—")
                .collect()
        };
        let module = names(cells[0]).pop_first().unwrap();
        graph.insert(module, names(cells[2]));
    }
    graph
}

#[test]
fn architecture_md_lists_the_modules_and_the_dependencies_the_code_has() {
    let code = code_graph();
    let documented = documented_graph();
    let code_modules: Vec<_> = code.keys().collect();
    let documented_modules: Vec<_> = documented.keys().collect();
    assert_eq!(code_modules, documented_modules, "the modules in src/ and in ARCHITECTURE.md's table");
    for (module, uses) in &code {
        assert_eq!(uses, &documented[module], "what module `{module}` uses (code left, ARCHITECTURE.md right)");
    }
}

#[test]
fn the_modules_depend_on_each_other_without_a_cycle() {
    // Kahn's algorithm: repeatedly remove a module that uses none of the remaining ones.
    let mut left = code_graph();
    while !left.is_empty() {
        let Some(leaf) =
            left.iter().find(|(_, uses)| uses.iter().all(|u| !left.contains_key(u))).map(|(m, _)| m.clone())
        else {
            panic!("these modules depend on each other in a cycle: {left:?}");
        };
        left.remove(&leaf);
    }
}

#[test]
fn the_core_does_not_depend_on_napi() {
    let manifest = std::fs::read_to_string(crate_dir().join("Cargo.toml")).unwrap();
    let deps = manifest.split("[dependencies]").nth(1).unwrap().split("\n[").next().unwrap();
    assert!(!deps.lines().any(|l| l.trim_start().starts_with("napi")), "ciphervec-core must stay free of napi");
}
