//! Properties of capture configurations: parsing never panics, exclusion
//! covers everything below an excluded directory, the per-entry test agrees
//! with the full test for a pruning walk, and glob matching agrees with a
//! naive reference matcher.

use proptest::prelude::*;
use tasq_wim::capture_config::CaptureConfig;

/// Small alphabet so that random globs and names actually match sometimes.
fn name() -> impl Strategy<Value = String> {
    "[abAB.]{1,4}"
}

fn glob() -> impl Strategy<Value = String> {
    "[abAB.*?]{1,4}"
}

fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        glob(),
        prop::collection::vec(glob(), 1..4).prop_map(|c| format!("\\{}", c.join("\\"))),
    ]
}

fn path() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(name(), 0..5)
}

fn config() -> impl Strategy<Value = CaptureConfig> {
    (
        prop::collection::vec(pattern(), 0..4),
        prop::collection::vec(pattern(), 0..3),
    )
        .prop_map(|(ex, exc)| {
            let text = format!(
                "[ExclusionList]\n{}\n[ExclusionException]\n{}\n",
                ex.join("\n"),
                exc.join("\n")
            );
            CaptureConfig::parse(text.as_bytes(), "gen.ini").unwrap()
        })
}

fn join(p: &[String]) -> String {
    format!("\\{}", p.join("\\"))
}

/// Reference glob matcher: plain recursion, case folded by to_lowercase.
fn naive(g: &[char], n: &[char]) -> bool {
    match g.split_first() {
        None => n.is_empty(),
        Some(('*', rest)) => (0..=n.len()).any(|i| naive(rest, &n[i..])),
        Some((&c, rest)) => match n.split_first() {
            Some((&d, nrest)) => {
                (c == '?' || c.to_lowercase().eq(d.to_lowercase())) && naive(rest, nrest)
            }
            None => false,
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = CaptureConfig::parse(&bytes, "fuzz.ini");
    }

    #[test]
    fn parse_never_panics_on_text(text in "(\\[[A-Za-z]{0,20}\\]|[\\\\/:a-c*?\"' ;#\r]{0,12})(\n(\\[[A-Za-z]{0,20}\\]|[\\\\/:a-c*?\"' ;#\r]{0,12})){0,8}") {
        for bytes in [text.as_bytes().to_vec(), {
            let mut v = vec![0xFF, 0xFE];
            v.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
            v
        }] {
            if let Ok(c) = CaptureConfig::parse(&bytes, "t.ini") {
                let _ = c.is_excluded("\\a\\b");
                let _ = c.to_string();
            }
        }
    }

    /// Excluding a directory excludes everything inside it.
    #[test]
    fn exclusion_is_inherited(c in config(), p in path(), child in name()) {
        if c.is_excluded(&join(&p)) {
            let mut q = p.clone();
            q.push(child);
            prop_assert!(c.is_excluded(&join(&q)));
        }
    }

    /// For a walk that skips excluded directories, the cheap per-entry test
    /// gives the same answer as the full one.
    #[test]
    fn entry_test_agrees_for_a_pruning_walk(c in config(), p in path()) {
        let ancestors_kept = (0..p.len()).all(|n| !c.is_excluded(&join(&p[..n])));
        if ancestors_kept {
            prop_assert_eq!(c.is_excluded_entry(&join(&p)), c.is_excluded(&join(&p)));
        }
    }

    /// A relative glob alone excludes a path exactly when it matches the name
    /// of the path or of one of its ancestors (checked with the naive matcher).
    #[test]
    fn relative_glob_matches_like_reference(g in glob(), p in prop::collection::vec(name(), 1..4)) {
        let c = CaptureConfig::parse(format!("[ExclusionList]\n{g}\n").as_bytes(), "g.ini").unwrap();
        let gc: Vec<char> = g.chars().collect();
        let expected = p.iter().any(|n| naive(&gc, &n.chars().collect::<Vec<_>>()));
        prop_assert_eq!(c.is_excluded(&join(&p)), expected);
    }

    /// `/` and `\` are the same separator, in patterns and in paths.
    #[test]
    fn separators_are_interchangeable(c in config(), p in path()) {
        prop_assert_eq!(c.is_excluded(&join(&p)), c.is_excluded(&format!("/{}", p.join("/"))));
    }
}
