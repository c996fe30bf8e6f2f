//! The WIM image list is read from a real WIM written by wimlib-imagex (the
//! peer implementation), and the wizard checks the index against it.

use std::io::{Read, Seek, SeekFrom};
use std::process::Command;

use tasq_tasksequence::wiminfo::{parse_xml, xml_location, HEADER_LEN};

#[test]
fn images_of_a_wimlib_written_wim() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a.txt"), b"hello").unwrap();
    let wim = dir.path().join("t.wim");
    for (i, name) in ["First", "Second edition"].iter().enumerate() {
        let verb = if i == 0 { "capture" } else { "append" };
        let st = Command::new("wimlib-imagex")
            .args([verb, src.to_str().unwrap(), wim.to_str().unwrap(), name])
            .status()
            .expect("wimlib-imagex is installed (scripts/setup.sh installs wimtools)");
        assert!(st.success());
    }
    let mut f = std::fs::File::open(&wim).unwrap();
    let mut header = vec![0u8; HEADER_LEN];
    f.read_exact(&mut header).unwrap();
    let loc = xml_location(&header).unwrap();
    f.seek(SeekFrom::Start(loc.offset)).unwrap();
    let mut xml = vec![0u8; loc.size as usize];
    f.read_exact(&mut xml).unwrap();
    let imgs = parse_xml(&xml).unwrap();
    assert_eq!(
        imgs.iter()
            .map(|i| (i.index, i.name.as_str()))
            .collect::<Vec<_>>(),
        vec![(1, "First"), (2, "Second edition")]
    );
}
