//! The text tree that `tasq ts show` prints: one line per entry with its index
//! path (usable as an address in edits), its type, markers for disabled and
//! continue-on-error entries, and its condition.

use crate::model::{Item, Sequence};

fn short_type(t: &str) -> &str {
    t.strip_prefix("SMS_TaskSequence_").unwrap_or(t)
}

/// Renders the tree. With `variables`, each step's default variables follow it
/// (secret values shown as `********`).
pub fn render(seq: &Sequence, variables: bool) -> String {
    let mut out = String::new();
    let steps = seq.walk_steps().len();
    out.push_str(&format!(
        "sequence version {} — {steps} step{}\n",
        seq.version.as_deref().unwrap_or("?"),
        if steps == 1 { "" } else { "s" }
    ));
    if let Some(refs) = &seq.references {
        out.push_str(&format!("references: {}\n", refs.len()));
    }
    walk(&seq.items, "", 0, variables, &mut out);
    out
}

fn walk(items: &[Item], prefix: &str, depth: usize, vars: bool, out: &mut String) {
    let indent = "  ".repeat(depth);
    let mut n = 0;
    for it in items {
        let (name, kind, disabled, coe, cond) = match it {
            Item::Group(g) => (
                &g.name,
                "group".to_string(),
                g.is_disabled(),
                g.continues_on_error(),
                &g.condition,
            ),
            Item::Step(s) => (
                &s.name,
                short_type(s.step_type.as_deref().unwrap_or("untyped step")).to_string(),
                s.is_disabled(),
                s.continues_on_error(),
                &s.condition,
            ),
            Item::Unknown(_) => continue,
        };
        n += 1;
        let index = if prefix.is_empty() {
            n.to_string()
        } else {
            format!("{prefix}.{n}")
        };
        out.push_str(&format!("{indent}{index} {name} [{kind}]"));
        if disabled {
            out.push_str(" (disabled)");
        }
        if coe {
            out.push_str(" (continue on error)");
        }
        if let Some(c) = cond {
            out.push_str(&format!(" if {c}"));
        }
        out.push('\n');
        match it {
            Item::Group(g) => walk(&g.items, &index, depth + 1, vars, out),
            Item::Step(s) if vars => {
                for v in s.variables.iter().flatten() {
                    let value = if crate::secrets::is_secret(&v.name, v.property.as_deref())
                        && !v.value.is_empty()
                    {
                        "********"
                    } else {
                        v.value.as_str()
                    };
                    out.push_str(&format!("{indent}    {} = {value}\n", v.name));
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_with_markers_and_conditions() {
        let x = r#"<sequence version="3.10"><group name="G"><step type="SMS_TaskSequence_RebootAction" name="R" disable="true" continueOnError="true"><condition><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">equals</variable><variable name="Value">false</variable><variable name="Variable">_SMSTSInWinPE</variable></expression></condition><defaultVarList><variable name="OSDJoinPassword" property="DomainPassword">s3cret</variable></defaultVarList></step></group><step name="MDT"/></sequence>"#;
        let seq = crate::import_str(x).unwrap();
        let t = render(&seq, true);
        assert_eq!(
            t,
            "sequence version 3.10 — 2 steps\n1 G [group]\n  1.1 R [RebootAction] (disabled) (continue on error) if _SMSTSInWinPE equals \"false\"\n      OSDJoinPassword = ********\n2 MDT [untyped step]\n"
        );
    }
}
