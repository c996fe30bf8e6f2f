//! ConfigMgr execution semantics, as a table of sequences with their exact
//! execution order and final variables.
mod common;
use common::*;
use tasq_engine::runner::{MediaType, RunOutcome};

const OK: &str = "true";
const COE: &str = "continueOnError=\"true\"";

fn var<'a>(r: &'a Ran, n: &str) -> Option<&'a str> {
    r.vars.get(n).map(String::as_str)
}

#[test]
fn worked_example_from_the_docs() {
    // group1 (continue on error): step1 (continue on error) fails, step2 fails,
    // so step3 is skipped and group2 runs; step4 fails in group2 (no continue
    // on error), so the sequence fails and step5 never runs.
    let xml = seq(&[
        group(
            "group1",
            COE,
            &[
                cmd("step1", "exit 1", COE),
                cmd("step2", "exit 2", ""),
                cmd("step3", "exit 0", ""),
            ],
        ),
        group(
            "group2",
            "",
            &[cmd("step4", "exit 4", ""), cmd("step5", "exit 0", "")],
        ),
    ]);
    let r = run(&xml);
    assert_eq!(
        r.order,
        ord(&[
            ("step1", "failed"),
            ("step2", "failed"),
            ("step4", "failed")
        ])
    );
    assert_eq!(
        r.outcome,
        RunOutcome::Failed {
            step: "step4".into(),
            exit_code: 4
        }
    );
    assert_eq!(var(&r, "_SMSTSLastActionName"), Some("step4"));
    assert_eq!(var(&r, "_SMSTSLastActionSucceeded"), Some("false"));
    assert_eq!(var(&r, "_SMSTSLastActionRetCode"), Some("4"));
}

#[test]
fn nested_groups_and_continue_on_error_at_each_level() {
    struct Case {
        name: &'static str,
        xml: String,
        order: Vec<(String, String)>,
        succeeded: bool,
    }
    let cases = vec![
        Case {
            name: "inner group continues on error: rest of inner skipped, outer goes on",
            xml: seq(&[
                group(
                    "outer",
                    "",
                    &[
                        setvar("A", "A", "1", ""),
                        group(
                            "inner",
                            COE,
                            &[cmd("B", "exit 5", ""), setvar("C", "C", "1", "")],
                        ),
                        setvar("D", "D", "1", ""),
                    ],
                ),
                setvar("E", "E", "1", ""),
            ]),
            order: ord(&[
                ("A", "succeeded"),
                ("B", "failed"),
                ("D", "succeeded"),
                ("E", "succeeded"),
            ]),
            succeeded: true,
        },
        Case {
            name: "inner group fails, outer continues on error: rest of outer skipped",
            xml: seq(&[
                group(
                    "outer",
                    COE,
                    &[
                        group(
                            "inner",
                            "",
                            &[cmd("B", "exit 5", ""), setvar("C", "C", "1", "")],
                        ),
                        setvar("D", "D", "1", ""),
                    ],
                ),
                setvar("E", "E", "1", ""),
            ]),
            order: ord(&[("B", "failed"), ("E", "succeeded")]),
            succeeded: true,
        },
        Case {
            name: "failure climbs every group without continue on error",
            xml: seq(&[
                group(
                    "g1",
                    "",
                    &[group(
                        "g2",
                        "",
                        &[
                            group("g3", "", &[cmd("B", "exit 7", "")]),
                            setvar("C", "C", "1", ""),
                        ],
                    )],
                ),
                setvar("E", "E", "1", ""),
            ]),
            order: ord(&[("B", "failed")]),
            succeeded: false,
        },
        Case {
            name: "step continue on error: next sibling runs",
            xml: seq(&[group(
                "g",
                "",
                &[cmd("B", "exit 7", COE), setvar("C", "C", "1", "")],
            )]),
            order: ord(&[("B", "failed"), ("C", "succeeded")]),
            succeeded: true,
        },
        Case {
            name: "disabled step and disabled group are skipped",
            xml: seq(&[
                setvar("A", "A", "1", "disable=\"true\""),
                group("g", "disable=\"true\"", &[setvar("B", "B", "1", "")]),
                setvar("C", "C", "1", ""),
            ]),
            order: ord(&[("A", "skipped"), ("g", "skipped"), ("C", "succeeded")]),
            succeeded: true,
        },
        Case {
            name: "custom success codes",
            xml: seq(&[
                cmd("A", "exit 42", "successCodeList=\"0 42\""),
                cmd("B", "exit 0", "successCodeList=\"42\""),
            ]),
            order: ord(&[("A", "succeeded"), ("B", "failed")]),
            succeeded: false,
        },
    ];
    for c in cases {
        let r = run(&c.xml);
        assert_eq!(r.order, c.order, "{}", c.name);
        assert_eq!(
            r.outcome == RunOutcome::Succeeded,
            c.succeeded,
            "{}: {:?}",
            c.name,
            r.outcome
        );
    }
}

#[test]
fn group_condition_skips_the_whole_group_and_sees_earlier_steps() {
    let xml = seq(&[
        setvar("set X", "X", "1", ""),
        group_cond(
            "runs",
            "",
            &cond_equals("X", "1"),
            &[setvar("in1", "Y", "a", "")],
        ),
        group_cond(
            "skipped",
            "",
            &cond_equals("X", "2"),
            &[
                setvar("in2", "Y", "b", ""),
                group("nested", "", &[setvar("in3", "Z", "c", "")]),
            ],
        ),
    ]);
    let r = run(&xml);
    assert_eq!(
        r.order,
        ord(&[
            ("set X", "succeeded"),
            ("in1", "succeeded"),
            ("skipped", "skipped")
        ])
    );
    assert_eq!(var(&r, "Y"), Some("a"));
    assert_eq!(var(&r, "Z"), None);
}

#[test]
fn skipped_steps_do_not_reset_last_action_variables() {
    let xml = seq(&[
        cmd("fails", "exit 9", COE),
        setvar("off", "A", "1", "disable=\"true\""),
        format!(
            "<step type=\"SMS_TaskSequence_SetVariableAction\" name=\"false cond\">{}<defaultVarList><variable name=\"VariableName\" property=\"VariableName\" hidden=\"true\">B</variable><variable name=\"VariableValue\" property=\"VariableValue\" hidden=\"true\">1</variable></defaultVarList></step>",
            cond_equals("NOPE", "1")
        ),
    ]);
    let r = run(&xml);
    assert_eq!(
        r.order,
        ord(&[
            ("fails", "failed"),
            ("off", "skipped"),
            ("false cond", "skipped")
        ])
    );
    assert_eq!(var(&r, "_SMSTSLastActionName"), Some("fails"));
    assert_eq!(var(&r, "_SMSTSLastActionSucceeded"), Some("false"));
    assert_eq!(var(&r, "_SMSTSLastActionRetCode"), Some("9"));
    assert_eq!(r.outcome, RunOutcome::Succeeded);
}

#[test]
fn built_in_variables_describe_media_and_computer() {
    let r = run_with(
        &seq(&[setvar(
            "a",
            "A",
            "%_SMSTSMachineName%-%_SMSTSMediaType%",
            "",
        )]),
        MediaType::Pxe,
        &[],
    );
    assert_eq!(var(&r, "A"), Some("REF01-PXE"));
    assert_eq!(var(&r, "_SMSTSInWinPE"), Some(OK));
    assert_eq!(var(&r, "_SMSTSBootUEFI"), Some(OK));
    assert_eq!(var(&r, "_SMSTSMake"), Some("Contoso"));
    assert_eq!(var(&r, "_SMSTSModel"), Some("VM9"));
    assert_eq!(var(&r, "_SMSTSSerialNumber"), Some("SN1"));
    assert_eq!(var(&r, "_SMSTSUUID"), Some("U-1"));
    assert_eq!(var(&r, "_SMSTSMacAddresses"), Some("00:11:22:33:44:55"));
    assert_eq!(var(&r, "_SMSTSLaunchMode"), Some("PXE"));
    assert_eq!(var(&r, "_SMSTSPackageID"), Some("TSQ00000"));
    assert_eq!(var(&r, "_SMSTSCurrentActionName"), Some("a"));
    assert!(var(&r, "_SMSTSLogPath").is_some());
    // No OSD step: a generic sequence.
    assert_eq!(var(&r, "_SMSTSType"), Some("1"));
    let r = run_with(&seq(&[setvar("a", "A", "1", "")]), MediaType::None, &[]);
    assert_eq!(var(&r, "_SMSTSInWinPE"), Some("false"));
    assert_eq!(var(&r, "_SMSTSMediaType"), None);
}

#[test]
fn read_only_variables_cannot_be_set() {
    let r = run(&seq(&[setvar("bad", "_SMSTSInWinPE", "false", "")]));
    assert_eq!(r.order, ord(&[("bad", "failed")]));
    assert_eq!(var(&r, "_SMSTSInWinPE"), Some(OK));
}

#[test]
fn unregistered_step_type_fails_naming_the_step() {
    let xml = seq(&["<step type=\"SMS_TaskSequence_PartitionDiskAction\" name=\"Partition Disk 0\"><action>osddiskpart.exe</action></step>".to_string()]);
    let r = run(&xml);
    assert!(matches!(r.outcome, RunOutcome::Failed { ref step, .. } if step == "Partition Disk 0"));
    let msg = r.events.iter().find_map(|e| match e {
        tasq_engine::events::Event::StepFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    let msg = msg.unwrap();
    assert!(
        msg.contains("Partition Disk 0") && msg.contains("SMS_TaskSequence_PartitionDiskAction"),
        "{msg}"
    );
}

#[test]
fn run_in_is_checked_against_the_phase() {
    let xml = seq(&[
        cmd("pe only", "exit 0", "runIn=\"WinPE\""),
        cmd("full only", "exit 0", &format!("runIn=\"FullOS\" {COE}")),
    ]);
    let r = run_with(&xml, MediaType::None, &[]);
    assert_eq!(r.order, ord(&[("pe only", "failed")]));
    let r = run_with(&xml, MediaType::Boot, &[]);
    assert_eq!(
        r.order,
        ord(&[("pe only", "succeeded"), ("full only", "failed")])
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded);
}

#[test]
fn timeout_kills_the_step() {
    let t = std::time::Instant::now();
    let r = run(&seq(&[cmd("slow", "sleep 30; echo done", "timeout=\"1\"")]));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(r.order, ord(&[("slow", "failed")]));
    assert_eq!(
        var(&r, "_SMSTSLastActionRetCode"),
        Some(&*(0x8007_05B4u32).to_string())
    );
}

#[test]
fn command_line_expansion_output_variable_and_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let wd = dir.path().display().to_string();
    let xml = seq(&[
        setvar("set", "Greeting", "hello", ""),
        cmd_vars(
            "echo",
            "echo %Greeting% from $(pwd)",
            "",
            &[
                ("SMSTSRunCommandLineOutputVariableName", "OUT"),
                ("WorkingDirectory", &wd),
            ],
        ),
    ]);
    let r = run(&xml);
    let out = var(&r, "OUT").unwrap();
    let real = std::fs::canonicalize(dir.path())
        .unwrap()
        .display()
        .to_string();
    assert_eq!(out.trim(), format!("hello from {real}"));
}

#[test]
fn environment_value_wins_over_step_default() {
    // A collection variable named like the step's setting overrides it; the
    // step's own value applies only where the environment has none.
    let xml = seq(&[cmd_vars(
        "echo",
        "echo x",
        "",
        &[("SMSTSRunCommandLineOutputVariableName", "OUT")],
    )]);
    let r = run_with(
        &xml,
        MediaType::Boot,
        &[(
            "SMSTSRunCommandLineOutputVariableName".into(),
            "OTHER".into(),
            false,
        )],
    );
    assert_eq!(var(&r, "OTHER").map(str::trim), Some("x"));
    assert_eq!(var(&r, "OUT"), None);
    let r = run(&xml);
    assert_eq!(var(&r, "OUT").map(str::trim), Some("x"));
}

#[test]
fn global_variables_apply_only_where_unset() {
    let xml = "<sequence version=\"3.10\"><globalVarList><variable name=\"G1\" property=\"G1\">seq</variable><variable name=\"G2\" property=\"G2\">seq</variable></globalVarList><step type=\"SMS_TaskSequence_SetVariableAction\" name=\"s\"><defaultVarList><variable name=\"VariableName\" property=\"VariableName\" hidden=\"true\">X</variable><variable name=\"VariableValue\" property=\"VariableValue\" hidden=\"true\">%G1%/%G2%</variable></defaultVarList></step></sequence>";
    let r = run_with(xml, MediaType::Boot, &[("G1".into(), "coll".into(), false)]);
    assert_eq!(var(&r, "X"), Some("coll/seq"));
}

#[test]
fn restart_into_boot_environment_continues_in_process() {
    let xml = seq(&[
        setvar("a", "A", "1", ""),
        restart("reboot", "WinPE"),
        setvar("b", "B", "%_SMSTSInWinPE%", ""),
    ]);
    let r = run_with(&xml, MediaType::None, &[]);
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(
        r.order,
        ord(&[
            ("a", "succeeded"),
            ("reboot", "succeeded"),
            ("b", "succeeded")
        ])
    );
    assert_eq!(var(&r, "B"), Some("true"));
}

#[test]
fn restart_into_installed_os_ends_the_run_and_resume_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let xml = seq(&[
        setvar("a", "A", "1", ""),
        restart("reboot", "HD"),
        setvar("b", "B", "%_SMSTSInWinPE%", ""),
    ]);
    let s = tasq_tasksequence::import_str(&xml).unwrap();
    let sink = Shared::default();
    let mut e = tasq_engine::Engine::start(
        &s,
        xml.as_bytes(),
        &[],
        config(dir.path(), MediaType::Boot, sink.clone()),
    )
    .unwrap();
    let o = e.run("Test", false).unwrap();
    assert!(
        matches!(o, RunOutcome::RestartRequired { ref message } if message.contains("--resume"))
    );
    assert_eq!(o.exit_code(), tasq_engine::runner::exit::RESTART_INTO_OS);
    drop(e);
    let (mut e, _) =
        tasq_engine::Engine::resume(config(dir.path(), MediaType::Boot, sink.clone())).unwrap();
    let o = e.run("Test", true).unwrap();
    let r = finish(e, o, sink);
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(
        r.order,
        ord(&[
            ("a", "succeeded"),
            ("reboot", "succeeded"),
            ("b", "succeeded")
        ])
    );
    assert_eq!(var(&r, "B"), Some("false"), "resumed in the installed OS");
    assert_eq!(var(&r, "A"), Some("1"));
}

#[test]
fn reboot_requested_variable_restarts_after_the_step_and_retry_reruns_it() {
    // SMSTSRetryRequested (here from the collection) with SMSTSRebootRequested
    // (set by the step): restart, then the same step again; both variables are
    // consumed, so the second run restarts without retry and goes on.
    let xml = seq(&[
        setvar("req", "SMSTSRebootRequested", "WinPE", ""),
        setvar("after", "X", "1", ""),
    ]);
    let r = run_with(
        &xml,
        MediaType::Boot,
        &[("SMSTSRetryRequested".into(), "true".into(), false)],
    );
    assert_eq!(r.outcome, RunOutcome::Succeeded);
    assert_eq!(
        r.order,
        ord(&[
            ("req", "succeeded"),
            ("req", "succeeded"),
            ("after", "succeeded")
        ])
    );
    let reboots = r
        .events
        .iter()
        .filter(|e| matches!(e, tasq_engine::events::Event::RebootRequested { name, .. } if name == "req"))
        .count();
    assert_eq!(reboots, 2);
    assert_eq!(
        var(&r, "SMSTSRebootRequested"),
        None,
        "consumed by the restart"
    );
    assert_eq!(var(&r, "SMSTSRetryRequested"), None);
    // Without retry: one restart, next step.
    let r = run(&xml);
    assert_eq!(
        r.order,
        ord(&[("req", "succeeded"), ("after", "succeeded")])
    );
}

/// Stands in for Run Command Line: `exit N` returns N unclipped (a shell
/// cannot exit with 3010, Windows commands can).
struct FakeExit;
impl tasq_engine::steps::StepAction for FakeExit {
    fn run(
        &self,
        ctx: &mut tasq_engine::steps::StepContext,
    ) -> Result<tasq_engine::steps::StepOutcome, tasq_engine::steps::StepError> {
        let c = ctx.step.var("CommandLine").unwrap_or("");
        let n = c.trim_start_matches("exit ").trim().parse().unwrap_or(-1);
        Ok(tasq_engine::steps::StepOutcome::code(n))
    }
}

#[test]
fn exit_3010_is_success_by_default_for_run_command_line_not_when_the_list_says_0() {
    let dir = tempfile::tempdir().unwrap();
    let xml = seq(&[
        cmd("A", "exit 3010", ""),
        cmd("B", "exit 3010", "successCodeList=\"0\""),
    ]);
    let s = tasq_tasksequence::import_str(&xml).unwrap();
    let sink = Shared::default();
    let mut cfg = config(dir.path(), MediaType::Boot, sink.clone());
    cfg.registry.register(
        tasq_tasksequence::steps::RUN_COMMAND_LINE,
        Box::new(FakeExit),
    );
    let mut e = tasq_engine::Engine::start(&s, xml.as_bytes(), &[], cfg).unwrap();
    let o = e.run("Test", false).unwrap();
    let r = finish(e, o, sink);
    assert_eq!(r.order, ord(&[("A", "succeeded"), ("B", "failed")]));
    assert_eq!(var(&r, "_SMSTSLastActionRetCode"), Some("3010"));
}

#[test]
fn retry_count_limits_reruns_after_unexpected_restarts() {
    // Simulate a crash inside a step with retryCount="1": the attempt is
    // journaled before the step runs, so each resume counts one more start.
    let dir = tempfile::tempdir().unwrap();
    let xml = seq(&[
        cmd("install", "exit 0", "retryCount=\"1\""),
        setvar("after", "X", "1", ""),
    ]);
    let s = tasq_tasksequence::import_str(&xml).unwrap();
    let e = tasq_engine::Engine::start(
        &s,
        xml.as_bytes(),
        &[],
        config(dir.path(), MediaType::Boot, Shared::default()),
    )
    .unwrap();
    drop(e);
    // Two "crashes" during the step: write the journal as the engine does before starting it.
    let j = tasq_engine::journal::Journal::open(dir.path()).unwrap();
    let (mut st, env) = j.load().unwrap();
    st.attempts = Some((0, 2));
    j.save(&st, &env).unwrap();
    let sink = Shared::default();
    let (mut e, _) =
        tasq_engine::Engine::resume(config(dir.path(), MediaType::Boot, sink.clone())).unwrap();
    let o = e.run("Test", true).unwrap();
    let r = finish(e, o, sink);
    assert_eq!(
        r.order,
        ord(&[("install", "failed")]),
        "third start exceeds one retry"
    );
    // One crash only: the step runs again and succeeds.
    let dir = tempfile::tempdir().unwrap();
    drop(
        tasq_engine::Engine::start(
            &s,
            xml.as_bytes(),
            &[],
            config(dir.path(), MediaType::Boot, Shared::default()),
        )
        .unwrap(),
    );
    let j = tasq_engine::journal::Journal::open(dir.path()).unwrap();
    let (mut st, env) = j.load().unwrap();
    st.attempts = Some((0, 1));
    j.save(&st, &env).unwrap();
    let sink = Shared::default();
    let (mut e, _) =
        tasq_engine::Engine::resume(config(dir.path(), MediaType::Boot, sink.clone())).unwrap();
    let o = e.run("Test", true).unwrap();
    let r = finish(e, o, sink);
    assert_eq!(
        r.order,
        ord(&[("install", "succeeded"), ("after", "succeeded")])
    );
}
