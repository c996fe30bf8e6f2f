//! Helpers shared by the integration tests: the samples folder and a tree
//! comparison done with an independent XML parser (roxmltree).

#![allow(dead_code)]

use std::path::PathBuf;

pub fn samples() -> PathBuf {
    // The shared samples sit beside the project; CI copies them to the same place.
    for base in [
        "/work/shared/samples",
        "../../../shared/samples",
        "../../shared/samples",
    ] {
        let p = PathBuf::from(base);
        if p.is_dir() {
            return p;
        }
    }
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../../../shared/samples")
}

/// A normalized element: name, sorted attributes, children; whitespace-only
/// text between elements dropped, leaf text kept verbatim.
#[derive(Debug, PartialEq, Eq, Clone)]
pub enum N {
    E(String, Vec<(String, String)>, Vec<N>),
    T(String),
}

pub fn normalize(text: &str) -> N {
    let doc = roxmltree::Document::parse(text).expect("independent parser accepts the XML");
    norm(doc.root_element())
}

fn norm(n: roxmltree::Node) -> N {
    let mut attrs: Vec<(String, String)> = n
        .attributes()
        .map(|a| (a.name().to_string(), a.value().to_string()))
        .collect();
    attrs.sort();
    let has_elem = n.children().any(|c| c.is_element());
    let mut kids = Vec::new();
    for c in n.children() {
        if c.is_element() {
            kids.push(norm(c));
        } else if c.is_text() {
            let t = c.text().unwrap_or("");
            if has_elem && t.trim().is_empty() {
                continue;
            }
            if !t.is_empty() {
                kids.push(N::T(t.to_string()));
            }
        }
    }
    N::E(n.tag_name().name().to_string(), attrs, kids)
}

/// Finds the first difference between two trees, as a path, for readable failures.
pub fn first_diff(a: &N, b: &N, path: &str) -> Option<String> {
    match (a, b) {
        (N::E(na, aa, ka), N::E(nb, ab, kb)) => {
            let here = format!("{path}/{na}");
            if na != nb || aa != ab {
                return Some(format!("{here}: {na}{aa:?} vs {nb}{ab:?}"));
            }
            if ka.len() != kb.len() {
                return Some(format!("{here}: {} children vs {}", ka.len(), kb.len()));
            }
            ka.iter()
                .zip(kb)
                .enumerate()
                .find_map(|(i, (x, y))| first_diff(x, y, &format!("{here}[{i}]")))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: {a:?} vs {b:?}")),
    }
}
