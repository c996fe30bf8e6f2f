//! Property tests: any bytes parse or fail without panicking; INFs written
//! from generated sections read back to exactly what was written, in every
//! encoding Windows accepts.

use proptest::prelude::*;
use tasq_drivers::inf::Inf;
use tasq_drivers::{pnp, DriverInf};

fn quote(v: &str) -> String {
    // Quoted so `;`, `,`, `=` and spaces survive; `%%` so no substitution happens.
    format!("\"{}\"", v.replace('"', "\"\"").replace('%', "%%"))
}

type Entries = Vec<(String, Vec<String>)>;

fn render(sections: &[(String, Entries)], crlf: bool) -> String {
    let nl = if crlf { "\r\n" } else { "\n" };
    let mut s = String::from("; generated");
    s.push_str(nl);
    for (name, entries) in sections {
        s.push_str(&format!("[{name}]  ; header comment{nl}"));
        for (k, vals) in entries {
            let v: Vec<String> = vals.iter().map(|v| quote(v)).collect();
            s.push_str(&format!("{k} = {} ; c{nl}", v.join(" , ")));
        }
    }
    s
}

fn encode(text: &str, how: u8) -> Vec<u8> {
    match how % 3 {
        0 => text.as_bytes().to_vec(),
        1 => [&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat(),
        _ => {
            let mut v = vec![0xFF, 0xFE];
            for u in text.encode_utf16() {
                v.extend_from_slice(&u.to_le_bytes());
            }
            v
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(inf) = Inf::parse("f", &data) {
            let _ = DriverInf::from_inf(&inf);
        }
    }

    #[test]
    fn inf_like_text_never_panics(text in "([\\[\\]=,;\"%\\\\ a-zA-Z0-9._$&\r\n]{0,60}){0,20}") {
        let mut t = String::from("[Version]\nSignature=\"$Windows NT$\"\n[Manufacturer]\n%M%=M,NTamd64,NT$ARCH$,NTx86.6.1..\n[M.NTamd64]\n");
        t.push_str(&text);
        if let Ok(d) = DriverInf::parse("f", t.as_bytes()) {
            for m in &d.manufacturers {
                let _ = m.section_for(tasq_drivers::Arch::Amd64, None);
            }
        }
    }

    #[test]
    fn written_sections_read_back(
        sections in proptest::collection::vec(
            proptest::collection::vec(
                ("[A-Za-z][A-Za-z0-9_.]{0,8}", proptest::collection::vec("[ -~äé€]{0,12}", 1..4)),
                0..5),
            1..5),
        crlf in any::<bool>(),
        how in any::<u8>(),
    ) {
        let named: Vec<(String, Entries)> = sections
            .into_iter()
            .enumerate()
            .map(|(i, e)| (format!("Sec{i}.NTamd64"), e))
            .collect();
        let bytes = encode(&render(&named, crlf), how);
        let inf = Inf::parse("gen.inf", &bytes).unwrap();
        prop_assert!(inf.warnings.is_empty(), "{:?}", inf.warnings);
        for (name, entries) in &named {
            let s = inf.section(&name.to_ascii_uppercase()).unwrap();
            prop_assert_eq!(s.lines.len(), entries.len());
            for (line, (k, vals)) in s.lines.iter().zip(entries) {
                prop_assert_eq!(line.key.as_deref(), Some(k.as_str()));
                prop_assert_eq!(&line.values, vals);
            }
        }
    }

    #[test]
    fn pnp_ids_never_panic_and_stay_bounded(id in "[A-Za-z_&\\\\0-9]{0,700}") {
        let d = pnp::device_ids(&id);
        prop_assert!(d.hardware_ids.len() <= 4 && d.compatible_ids.len() <= 7);
        prop_assert!(d.hardware_ids.iter().chain(&d.compatible_ids).all(|x| x.len() < 1200));
    }
}
