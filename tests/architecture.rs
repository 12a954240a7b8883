//! The layer map of src/lib.rs, checked: every module uses only modules of
//! lower layers (or its own), so there is no import cycle and no call
//! upwards. Reads the sources as text: `crate::NAME` in code (not comments).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Each top-level module and its layer; a module may use lower layers only.
const LAYERS: &[(&str, u32)] = &[
    ("secret", 0),
    ("timefmt", 0),
    ("fsmode", 0),
    ("journal", 0),
    ("notify", 0),
    ("metrics", 1),
    ("limits", 0),
    ("crypto", 1),
    ("private_file", 2),
    ("model", 2),
    ("import", 3),
    ("config", 4),
    ("store", 5),
    ("directory", 5),
    ("domain", 6),
    ("radius", 7),
    ("admin", 7),
    ("web", 7),
    ("daemon", 8),
    ("fuzzing", 9),
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The modules a file names as `crate::NAME`, outside comments.
fn used_modules(text: &str) -> Vec<String> {
    let mut used = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            used.push(name);
        }
    }
    used
}

#[test]
fn every_module_uses_only_lower_layers() {
    let layer: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let top =
            relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_string();
        if top == "bin" || top == "lib" {
            continue;
        }
        let Some(&own) = layer.get(top.as_str()) else {
            problems.push(format!("{}: module {top} is not in the layer map", relative.display()));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for used in used_modules(&text) {
            if used == top || used.is_empty() || used.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                continue;
            }
            match layer.get(used.as_str()) {
                Some(&theirs) if theirs < own => {}
                // Test-only macros exported at the crate root.
                None if used.ends_with("_tests") => {}
                Some(&theirs) => {
                    problems.push(format!("{}: {top} (layer {own}) uses {used} (layer {theirs})", relative.display()))
                }
                None => problems.push(format!("{}: uses unknown module {used}", relative.display())),
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}
