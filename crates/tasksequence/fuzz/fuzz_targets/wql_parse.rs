#![no_main]
//! The WQL parser and evaluator must never panic, hang or recurse without bound.
use libfuzzer_sys::fuzz_target;
use tasq_tasksequence::wql::{self, Instance, Value};

fuzz_target!(|data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let Ok(query) = wql::parse(q) else { return };
    let inv = vec![
        Instance::new().with("Manufacturer", "HP").with("Model", "HP ProBook 445 G6").with("TotalPhysicalMemory", 17_179_869_184i64),
        Instance::new().with("ChassisTypes", Value::Array(vec![Value::Int(3), Value::Int(10)])).with("Flag", true),
    ];
    let _ = wql::run(&query, &inv);
});
