//! Builders for test sequences and a harness that runs them.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use tasq_engine::events::{Collect, Event, EventSink};
use tasq_engine::runner::{DiskImageMachine, Engine, EngineConfig, MediaType, RunOutcome};
use tasq_engine::steps::Registry;
use tasq_engine::Computer;

pub fn cmd(name: &str, command: &str, attrs: &str) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"{name}\" {attrs}><action>smsswd.exe /run: {c}</action><defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">{c}</variable></defaultVarList></step>",
        c = xml_escape(command)
    )
}

pub fn cmd_vars(name: &str, command: &str, attrs: &str, vars: &[(&str, &str)]) -> String {
    let extra: String = vars
        .iter()
        .map(|(n, v)| {
            format!(
                "<variable name=\"{n}\" property=\"{n}\">{}</variable>",
                xml_escape(v)
            )
        })
        .collect();
    format!(
        "<step type=\"SMS_TaskSequence_RunCommandLineAction\" name=\"{name}\" {attrs}><action>smsswd.exe /run: {c}</action><defaultVarList><variable name=\"CommandLine\" property=\"CommandLine\" hidden=\"true\">{c}</variable>{extra}</defaultVarList></step>",
        c = xml_escape(command)
    )
}

pub fn setvar(name: &str, var: &str, value: &str, attrs: &str) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_SetVariableAction\" name=\"{name}\" {attrs}><action>tsenv.exe \"{var}={v}\"</action><defaultVarList><variable name=\"VariableName\" property=\"VariableName\" hidden=\"true\">{var}</variable><variable name=\"VariableValue\" property=\"VariableValue\" hidden=\"true\">{v}</variable></defaultVarList></step>",
        v = xml_escape(value)
    )
}

pub fn secret_setvar(name: &str, var: &str, value: &str) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_SetVariableAction\" name=\"{name}\"><action>tsenv.exe</action><defaultVarList><variable name=\"DoNotShowVariableValue\" property=\"DoNotShowVariableValue\" hidden=\"true\">true</variable><variable name=\"VariableName\" property=\"VariableName\" hidden=\"true\">{var}</variable><variable name=\"VariableValue\" property=\"VariableValue\" hidden=\"true\">{v}</variable></defaultVarList></step>",
        v = xml_escape(value)
    )
}

pub fn restart(name: &str, target: &str) -> String {
    format!(
        "<step type=\"SMS_TaskSequence_RebootAction\" name=\"{name}\"><action>smsboot.exe /target:{target}</action><defaultVarList><variable name=\"SMSRebootTarget\" property=\"Target\" hidden=\"true\">{target}</variable></defaultVarList></step>"
    )
}

pub fn group(name: &str, attrs: &str, children: &[String]) -> String {
    format!(
        "<group name=\"{name}\" {attrs}>{}</group>",
        children.concat()
    )
}

pub fn cond_equals(var: &str, value: &str) -> String {
    format!("<condition><expression type=\"SMS_TaskSequence_VariableConditionExpression\"><variable name=\"Operator\">equals</variable><variable name=\"Value\">{value}</variable><variable name=\"Variable\">{var}</variable></expression></condition>")
}

pub fn group_cond(name: &str, attrs: &str, cond: &str, children: &[String]) -> String {
    format!(
        "<group name=\"{name}\" {attrs}>{cond}{}</group>",
        children.concat()
    )
}

pub fn seq(items: &[String]) -> String {
    format!(
        "<sequence version=\"3.10\" name=\"Test\">{}</sequence>",
        items.concat()
    )
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Shares the collected events with the test after the engine is gone.
#[derive(Clone, Default)]
pub struct Shared(pub std::sync::Arc<std::sync::Mutex<Collect>>);

impl EventSink for Shared {
    fn event(&mut self, e: &Event) {
        if let Ok(mut c) = self.0.lock() {
            c.event(e);
        }
    }
}

pub struct Ran {
    pub outcome: RunOutcome,
    /// (name, outcome) of every step that ran or was skipped, in order.
    pub order: Vec<(String, String)>,
    pub vars: BTreeMap<String, String>,
    pub events: Vec<Event>,
}

pub fn computer() -> Computer {
    Computer::from_toml(
        "name = \"REF01\"\nmake = \"Contoso\"\nmodel = \"VM9\"\nserial = \"SN1\"\nuuid = \"U-1\"\nfirmware = \"uefi\"\nmac_addresses = [\"00:11:22:33:44:55\"]\n",
        Path::new("computer.toml"),
    )
    .unwrap()
}

pub fn config(state: &Path, media: MediaType, sink: Shared) -> EngineConfig {
    EngineConfig {
        computer: computer(),
        state_dir: state.to_path_buf(),
        media,
        registry: Registry::general(),
        machine: Box::new(DiskImageMachine {
            computer_file: "computer.toml".into(),
        }),
        content: None,
        sinks: vec![Box::new(sink)],
        package_id: "TSQ00000".into(),
    }
}

pub fn run_with(xml: &str, media: MediaType, vars: &[(String, String, bool)]) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let s = tasq_tasksequence::import_str(xml).unwrap();
    let sink = Shared::default();
    let mut e = Engine::start(
        &s,
        xml.as_bytes(),
        vars,
        config(dir.path(), media, sink.clone()),
    )
    .unwrap();
    let outcome = e.run("Test", false).unwrap();
    finish(e, outcome, sink)
}

pub fn finish(e: Engine, outcome: RunOutcome, sink: Shared) -> Ran {
    let order = e
        .state
        .results
        .iter()
        .map(|r| (r.name.clone(), r.outcome.clone()))
        .collect();
    let events = sink.0.lock().unwrap().0.clone();
    Ran {
        outcome,
        order,
        vars: e.env.to_map(),
        events,
    }
}

pub fn run(xml: &str) -> Ran {
    run_with(xml, MediaType::Boot, &[])
}

pub fn ord(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}
