//! Random sequences (built with the editor from random operations) export to
//! XML that reads back to the same export, and that an independent parser
//! (roxmltree) accepts with the same names, attributes and values.

use proptest::prelude::*;
use tasq_tasksequence::condition::{CmpOp, Expression};
use tasq_tasksequence::editor::{self, Position};
use tasq_tasksequence::steps::StepKind;
use tasq_tasksequence::{export, import_str, ExportOptions, Sequence};

#[derive(Debug, Clone)]
enum Op {
    Step(usize, String, u8),
    Group(String, u8),
    Disable(u8),
    Set(u8, String, String),
    Cond(u8, String, usize, String),
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 /&<>\"'é-]{1,20}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..StepKind::ALL.len(), name(), any::<u8>()).prop_map(|(k, n, p)| Op::Step(k, n, p)),
        (name(), any::<u8>()).prop_map(|(n, p)| Op::Group(n, p)),
        any::<u8>().prop_map(Op::Disable),
        (any::<u8>(), "[A-Za-z][A-Za-z0-9_]{0,12}", "\\PC{0,20}")
            .prop_map(|(p, k, v)| Op::Set(p, k, v)),
        (
            any::<u8>(),
            "[A-Za-z][A-Za-z0-9_]{0,12}",
            0usize..9,
            "[ -~]{0,10}"
        )
            .prop_map(|(p, v, o, x)| Op::Cond(p, v, o, x)),
    ]
}

/// The index path of the n-th entry (depth first), if any.
fn nth_entry(seq: &Sequence, n: u8) -> Option<String> {
    fn walk(items: &[tasq_tasksequence::Item], prefix: &str, out: &mut Vec<(String, bool)>) {
        let mut i = 0;
        for it in items {
            if !it.is_entry() {
                continue;
            }
            i += 1;
            let p = if prefix.is_empty() {
                i.to_string()
            } else {
                format!("{prefix}.{i}")
            };
            let is_group = matches!(it, tasq_tasksequence::Item::Group(_));
            out.push((p.clone(), is_group));
            if let tasq_tasksequence::Item::Group(g) = it {
                walk(&g.items, &p, out);
            }
        }
    }
    let mut all = Vec::new();
    walk(&seq.items, "", &mut all);
    if all.is_empty() {
        return None;
    }
    Some(all[n as usize % all.len()].0.clone())
}

fn apply(seq: &mut Sequence, op: &Op) {
    const OPS: [CmpOp; 9] = [
        CmpOp::Exists,
        CmpOp::NotExists,
        CmpOp::Equals,
        CmpOp::NotEquals,
        CmpOp::Less,
        CmpOp::LessEqual,
        CmpOp::Greater,
        CmpOp::GreaterEqual,
        CmpOp::Like,
    ];
    // Refused edits are fine: the point is that accepted ones serialize.
    let _ = match op {
        Op::Step(k, n, p) => {
            let pos = nth_entry(seq, *p)
                .map(Position::After)
                .unwrap_or(Position::End);
            editor::add_step(seq, StepKind::ALL[*k].type_name(), Some(n), &pos).map(drop)
        }
        Op::Group(n, p) => {
            let pos = nth_entry(seq, *p)
                .map(Position::Before)
                .unwrap_or(Position::End);
            editor::add_group(seq, n, &pos).map(drop)
        }
        Op::Disable(p) => match nth_entry(seq, *p) {
            Some(path) => editor::set_enabled(seq, &path, false),
            None => Ok(()),
        },
        Op::Set(p, k, v) => match nth_entry(seq, *p) {
            Some(path) => editor::set(seq, &path, k, v),
            None => Ok(()),
        },
        Op::Cond(p, var, o, val) => match nth_entry(seq, *p) {
            Some(path) => {
                let op = OPS[*o % OPS.len()];
                let val = if matches!(op, CmpOp::Exists | CmpOp::NotExists) {
                    String::new()
                } else {
                    val.clone()
                };
                editor::condition_add(seq, &path, Expression::variable(var, op, &val))
            }
            None => Ok(()),
        },
    };
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn random_sequences_round_trip(ops in proptest::collection::vec(op(), 0..40)) {
        let mut seq = Sequence::default();
        for o in &ops {
            apply(&mut seq, o);
        }
        let keep = ExportOptions { keep_secrets: true, ..Default::default() };
        let xml = export(&seq, keep);
        let back = import_str(&xml).unwrap();
        prop_assert_eq!(export(&back, keep), xml.clone());
        prop_assert_eq!(back.walk_steps().len(), seq.walk_steps().len());
        // An independent parser sees the same step names.
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let names: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("step")).filter_map(|n| n.attribute("name")).collect();
        let ours: Vec<String> = seq.walk_steps().iter().map(|(_, s)| s.name.clone()).collect();
        prop_assert_eq!(names, ours);
    }
}
