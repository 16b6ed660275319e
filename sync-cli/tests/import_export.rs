//! `kith import` and `kith export` of a 10,000-file vdir, compared with the real `diff -r`.

mod common;

use std::process::Command;

use common::{Kith, write_vcards};

fn diff_r(a: &std::path::Path, b: &std::path::Path) -> std::process::Output {
    Command::new("diff")
        .arg("-r")
        .arg(a)
        .arg(b)
        .output()
        .expect("diff (diffutils) must be installed")
}

#[test]
fn ten_thousand_vcards_export_identically_and_edits_import_as_one_commit() {
    let k = Kith::init();
    let src = k.dir.path().join("vdir");
    write_vcards(&src, 10_000);
    std::fs::write(src.join("binary.bin"), (0..=255u8).collect::<Vec<u8>>()).unwrap();
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    std::fs::write(src.join("nested/deeper/x.vcf"), "BEGIN:VCARD\nEND:VCARD\n").unwrap();

    let out = k.json(&["import", src.to_str().unwrap(), "/contacts/me/default"]);
    assert_eq!(out["files"], 10_002);
    let dest = k.dir.path().join("exported");
    k.ok(&["export", "/contacts/me/default", dest.to_str().unwrap()]);
    let d = diff_r(&src, &dest);
    assert!(
        d.status.success(),
        "diff -r: {}",
        String::from_utf8_lossy(&d.stdout)
    );

    // Edit, add and delete in the exported vdir; import records exactly that.
    std::fs::write(
        dest.join("00042-uid.vcf"),
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Changed\r\nEND:VCARD\r\n",
    )
    .unwrap();
    std::fs::remove_file(dest.join("00043-uid.vcf")).unwrap();
    std::fs::write(dest.join("new.vcf"), "BEGIN:VCARD\r\nEND:VCARD\r\n").unwrap();
    k.ok(&[
        "import",
        dest.to_str().unwrap(),
        "/contacts/me/default",
        "-m",
        "edited in khard",
    ]);
    let changes = k.ok(&["diff"]);
    assert_eq!(
        changes,
        "M /contacts/me/default/00042-uid.vcf\nD /contacts/me/default/00043-uid.vcf\nA /contacts/me/default/new.vcf\n"
    );
    assert_eq!(k.json(&["log"]).as_array().unwrap().len(), 2);

    // Importing the same folder again changes nothing.
    assert_eq!(
        k.json(&["import", dest.to_str().unwrap(), "/contacts/me/default"])["commit"],
        serde_json::Value::Null
    );

    // A refresh with --mirror makes an old export match the store again.
    let stale = k.dir.path().join("stale");
    k.ok(&["export", "/contacts/me/default", stale.to_str().unwrap()]);
    std::fs::write(stale.join("junk.vcf"), "x").unwrap();
    assert!(
        k.fails(&["export", "/contacts/me/default", stale.to_str().unwrap()])
            .contains("--mirror")
    );
    k.ok(&[
        "export",
        "--mirror",
        "/contacts/me/default",
        stale.to_str().unwrap(),
    ]);
    assert!(diff_r(&dest, &stale).status.success());
    k.ok(&["fsck"]);
}
