//! Odd but real forms are accepted; malformed input is an error with a line and
//! column, never a panic.

mod common;

use common::{first_diff, normalize, samples};
use proptest::prelude::*;
use tasq_tasksequence::{export, import_bytes, import_str, Error, ExportOptions};

const EMPTY_OR: &str = r#"<sequence version="3.10"><step type="SMS_TaskSequence_RunCommandLineAction" name="Run HP BIOS Update" description="" runIn="WinPEandFullOS" successCodeList="0 3010" retryCount="0" runFromNet="false"><condition><operator type="or"/><expression type="SMS_TaskSequence_WMIConditionExpression"><variable name="Namespace">root\cimv2</variable><variable name="Query">SELECT * FROM Win32_ComputerSystem WHERE Manufacturer LIKE "HP%"</variable></expression><expression type="SMS_TaskSequence_VariableConditionExpression"><variable name="Operator">EQUALS</variable><variable name="Value">TRUE</variable><variable name="Variable">IsUEFI</variable></expression></condition><action>smsswd.exe /run: x.exe</action><defaultVarList/></step></sequence>"#;

#[test]
fn empty_operator_followed_by_siblings_round_trips() {
    let seq = import_str(EMPTY_OR).unwrap();
    let out = export(&seq, ExportOptions::default());
    assert_eq!(out, EMPTY_OR);
    assert_eq!(first_diff(&normalize(EMPTY_OR), &normalize(&out), ""), None);
    let cond = seq.walk_steps()[0].1.condition.clone().unwrap();
    assert_eq!(cond.items.len(), 3);
}

#[test]
fn truncated_samples_are_errors_with_positions() {
    let text =
        std::fs::read_to_string(samples().join("mdt-ts/erikpt_MDT_DeployXMLExamples_002_ts.xml"))
            .unwrap();
    let mut cut = 1;
    let mut n = 0;
    while cut < text.len() {
        if text.is_char_boundary(cut) {
            let err = import_str(&text[..cut]).expect_err("a truncated document is not valid");
            let pos = err.pos().expect("errors from text carry a position");
            assert!(pos.line >= 1 && pos.column >= 1, "{err}");
            n += 1;
        }
        cut += 97;
    }
    assert!(n > 100);
}

#[test]
fn error_names_line_and_column() {
    let err = import_str("<sequence version=\"3.10\">\n  <group name=\"a\">\n    <step name=\"x\" runIn=\"WinPE\">\n  </group>\n</sequence>").unwrap_err();
    assert!(matches!(err, Error::Syntax { .. }));
    let msg = err.to_string();
    assert!(msg.contains("line 4"), "{msg}");
    let err = import_str("<sequence>\n\n   <step name=\"x\" runIn=\"Somewhere\"/></sequence>")
        .unwrap_err();
    assert_eq!(err.to_string(), "invalid task sequence at line 3, column 4: step \"x\": runIn=\"Somewhere\" is not WinPE, FullOS or WinPEandFullOS");
}

#[test]
fn huge_and_binary_inputs_are_refused() {
    let big = vec![b' '; tasq_tasksequence::xml::MAX_INPUT + 1];
    assert!(matches!(import_bytes(&big), Err(Error::TooLarge { .. })));
    assert!(import_bytes(&[0xff, 0x00, 0x12, 0x80]).is_err());
    // Deep nesting stops at the limit instead of overflowing the stack.
    let deep = format!("<sequence>{}", "<group name=\"g\">".repeat(100_000));
    assert!(import_str(&deep).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn mutated_sample_never_panics(pos in 0usize..9000, byte in any::<u8>(), del in 0usize..40) {
        let text = std::fs::read(samples().join("configmgr-ts/DRFiles_TS-BitLocker_sequence.xml")).unwrap();
        let mut b = text.clone();
        let p = pos % b.len();
        b[p] = byte;
        let end = (p + del).min(b.len());
        b.drain(p + 1..end.max(p + 1));
        if let Ok(seq) = import_bytes(&b) {
            // Whatever was accepted exports and reads back to the same thing.
            let out = export(&seq, ExportOptions { keep_secrets: true, ..Default::default() });
            let again = import_str(&out).unwrap();
            prop_assert_eq!(export(&again, ExportOptions { keep_secrets: true, ..Default::default() }), out);
        }
    }

    #[test]
    fn any_text_values_survive_export(name in "\\PC{0,30}", value in "\\PC{0,60}", cmd in "[ -~\t\r\n]{0,60}") {
        let mut seq = import_str(r#"<sequence version="3.10"><step type="SMS_TaskSequence_RunCommandLineAction" name="x"/></sequence>"#).unwrap();
        seq.for_each_step_mut(&mut |s| {
            s.name = name.clone();
            s.action = Some(cmd.clone());
            s.set_var("V", Some("P"), &value);
        });
        let out = export(&seq, ExportOptions::default());
        let back = import_str(&out).unwrap();
        let (_, s) = back.walk_steps()[0];
        prop_assert_eq!(&s.name, &name);
        prop_assert_eq!(s.var("V"), Some(value.as_str()));
        // XML folds CR LF into LF in text; we escape CR so it survives.
        prop_assert_eq!(s.action.as_deref(), Some(cmd.as_str()));
    }
}
