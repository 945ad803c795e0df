//! The `kefu` binary run as ops run it, on temporary files and data directories.

use kefu::adapters::embedded::EmbeddedStore;
use kefu::domain::{ConversationId, MessageId};
use kefu::ports::BlobStore;
use kefu_bot::unanswered::{self, BestGuess, Unanswered};
use kefu_bot::{FaqIndex, FaqLibrary};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

const VALID_JSONL: &str = concat!(
    r#"{"id":"invoice","question":"可以开发票吗？","similar":["怎么开发票","发票怎么开"],"answer":"可以，下单时填写抬头即可。","category":"billing","locale":"zh-CN"}"#,
    "\n",
    r#"{"id":"ship-time","question":"When will my order ship?","similar":["how long until you ship"],"answer":"Within 48 hours.","locale":"en"}"#,
    "\n",
);

/// Customers' questions for [`VALID_JSONL`], labelled.
const VALIDATION: &str = concat!(
    r#"{"text":"能开票吗","expected":"invoice"}"#,
    "\n",
    r#"{"text":"how soon do you ship","expected":"ship-time"}"#,
    "\n",
    r#"{"text":"支持货到付款吗","expected":null}"#,
    "\n",
);

/// Line 2 is not JSON, line 3 repeats an id, line 4 has an empty answer and takes a
/// question of line 1.
const INVALID_JSONL: &str = concat!(
    r#"{"id":"invoice","question":"可以开发票吗？","answer":"可以。"}"#,
    "\n",
    r#"{"id":"broken","question":"#,
    "\n",
    r#"{"id":"invoice","question":"运费多少","answer":"10元"}"#,
    "\n",
    r#"{"id":"empty","question":"可以开发票吗","answer":""}"#,
    "\n",
);

fn kefu(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .args(args)
        .env_remove("KEFU_BUCKET")
        .env_remove("KEFU_DATA_DIR")
        .env_remove("KEFU_LOG")
        .output()
        .expect("the kefu binary runs")
}

/// `kefu faq publish <source> --val <val> --data-dir <data>`.
fn publish_with_val(source: &str, val: &str, data: &str) -> Output {
    kefu(&["faq", "publish", source, "--val", val, "--data-dir", data])
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write fixture");
    path.to_str().expect("utf-8 path").to_owned()
}

/// The value printed after `label` on its `label   value` line.
fn field(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| rest.trim().to_owned())
        .unwrap_or_else(|| panic!("no {label:?} line in {text}"))
}

#[test]
fn given_a_valid_source_when_checked_then_exit_0_with_a_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", VALID_JSONL);

    let output = kefu(&["faq", "check", &source]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("valid"), "{text}");
    assert_eq!(field(&text, "entries"), "2");
    assert_eq!(field(&text, "paraphrases"), "5");
    assert_eq!(field(&text, "locales"), "en 1, zh-CN 1");
    assert_eq!(field(&text, "categories"), "(none) 1, billing 1");
    assert!(stderr(&output).is_empty(), "no progress without a terminal");
}

#[test]
fn given_a_valid_csv_source_when_checked_then_exit_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(
        dir.path(),
        "faq.csv",
        "id,question,similar,answer\nrefund,退款多久到账,钱什么时候退回来|退款要几天,1-3个工作日\n",
    );

    let output = kefu(&["faq", "check", &source]);

    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(field(&stdout(&output), "paraphrases"), "3");
}

#[test]
fn given_an_invalid_source_when_checked_then_exit_1_with_every_problem_by_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", INVALID_JSONL);

    let output = kefu(&["faq", "check", &source]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("faq.jsonl:2: malformed entry"), "{text}");
    assert!(
        text.contains("faq.jsonl:3: duplicate id \"invoice\""),
        "{text}"
    );
    assert!(
        text.contains("faq.jsonl:4: missing or empty \"answer\""),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&format!("{source}:4:")) && l.contains("entry \"invoice\"")),
        "duplicate paraphrase across entries: {text}"
    );
    assert!(text.contains("invalid, 4 problems"), "{text}");
}

#[test]
fn given_a_missing_file_or_unknown_format_when_checked_then_exit_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("absent.jsonl");
    let output = kefu(&["faq", "check", missing.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("absent.jsonl"),
        "{}",
        stderr(&output)
    );

    let text_file = write(dir.path(), "faq.txt", VALID_JSONL);
    let output = kefu(&["faq", "check", &text_file]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("unknown FAQ source format"));

    let output = kefu(&["faq", "check"]);
    assert_eq!(output.status.code(), Some(2), "usage error");
}

#[test]
fn given_a_valid_source_when_built_then_the_bundle_loads_under_its_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", VALID_JSONL);
    let out = dir.path().join("bundles");

    let output = kefu(&[
        "faq",
        "build",
        &source,
        "--out",
        out.to_str().expect("utf-8"),
    ]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(
        stderr(&output).is_empty(),
        "stdout only: {}",
        stderr(&output)
    );
    let version = field(&text, "version");
    let names: Vec<String> = std::fs::read_dir(&out)
        .expect("out dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec![version.clone()],
        "exactly the bundle, no leftovers"
    );
    let bundle = std::fs::read(out.join(&version)).expect("bundle");
    assert!(
        field(&text, "size").starts_with(&format!("{} bytes", bundle.len())),
        "{text}"
    );
    let index = FaqIndex::from_bundle(&bundle).expect("bundle loads");
    assert_eq!(index.entries().len(), 2);
    assert!(index.entry("invoice").is_some());
    assert_eq!(field(&text, "entries"), "2");
    assert_eq!(
        field(&text, "calibrated"),
        "on the FAQ's paraphrases (cross-validation)"
    );
}

#[test]
fn given_labelled_questions_when_built_with_val_then_calibrated_on_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", VALID_JSONL);
    let retired = r#"{"text":"能开专票吗","expected":"vat-invoice"}"#;
    let val = write(dir.path(), "val.jsonl", &format!("{VALIDATION}{retired}\n"));
    let out = dir.path().join("bundles");
    let out_arg = out.to_str().expect("utf-8");

    let output = kefu(&["faq", "build", &source, "--out", out_arg, "--val", &val]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert_eq!(
        field(&text, "calibrated"),
        "on 4 labelled questions (1 names no entry of the FAQ, so read as out of scope)"
    );
    let bundle = std::fs::read(out.join(field(&text, "version"))).expect("bundle");
    assert_eq!(
        FaqIndex::from_bundle(&bundle)
            .expect("loads")
            .entries()
            .len(),
        2
    );
}

#[test]
fn given_a_malformed_val_when_built_then_exit_1_naming_the_line_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", VALID_JSONL);
    let val = write(
        dir.path(),
        "val.jsonl",
        &format!("{VALIDATION}{{\"text\":1}}\n"),
    );
    let out = dir.path().join("bundles");
    let out_arg = out.to_str().expect("utf-8");

    let output = kefu(&["faq", "build", &source, "--out", out_arg, "--val", &val]);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("val.jsonl: invalid input: line 4:"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "no bundle for a rejected validation file");
}

#[test]
fn given_an_invalid_source_when_built_then_exit_1_and_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", INVALID_JSONL);
    let out = dir.path().join("bundles");

    let output = kefu(&[
        "faq",
        "build",
        &source,
        "--out",
        out.to_str().expect("utf-8"),
    ]);

    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("faq.jsonl:2:"),
        "{}",
        stderr(&output)
    );
    assert!(!out.exists(), "no bundle directory for a rejected source");
}

#[tokio::test]
async fn given_a_data_dir_when_published_then_the_library_loads_that_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "shop-faq.jsonl", VALID_JSONL);
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8").to_owned();

    let output = kefu(&["faq", "publish", &source, "--data-dir", &data_arg]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let version = field(&text, "version");
    let blobs = EmbeddedStore::open(&data).expect("store").blobs();
    assert_eq!(
        blobs.get("faq/source/shop-faq.jsonl").await.expect("get"),
        Some(VALID_JSONL.as_bytes().to_vec()),
        "the source is uploaded under its file name"
    );
    let library = FaqLibrary::new(Duration::from_secs(30));
    assert_eq!(
        library.load(&blobs).await.expect("load"),
        Some(version.clone())
    );
    let index = library.current().expect("an index is current");
    assert!(index.entry("ship-time").is_some());
}

#[tokio::test]
async fn given_val_when_published_then_it_is_stored_beside_the_source_and_kept_for_later() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "shop-faq.jsonl", VALID_JSONL);
    let val = write(dir.path(), "questions.jsonl", VALIDATION);
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8").to_owned();

    let first = publish_with_val(&source, &val, &data_arg);
    let again = kefu(&["faq", "publish", &source, "--data-dir", &data_arg]);

    for output in [&first, &again] {
        let text = stdout(output);
        assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(output));
        assert_eq!(field(&text, "calibrated"), "on 3 labelled questions");
    }
    let blobs = EmbeddedStore::open(&data).expect("store").blobs();
    assert_eq!(
        blobs
            .get("faq/validation/shop-faq.jsonl")
            .await
            .expect("get"),
        Some(VALIDATION.as_bytes().to_vec())
    );
}

#[tokio::test]
async fn given_a_malformed_val_when_published_then_exit_1_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", VALID_JSONL);
    let val = write(dir.path(), "val.jsonl", "not json\n");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8").to_owned();

    let output = publish_with_val(&source, &val, &data_arg);

    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stdout(&output).is_empty(), "no version printed");
    assert!(stderr(&output).contains("val.jsonl: invalid input: line 1:"));
    if data.exists() {
        let blobs = EmbeddedStore::open(&data).expect("store").blobs();
        assert!(blobs.list("faq/").await.expect("list").is_empty());
    }
}

#[tokio::test]
async fn given_an_invalid_source_when_published_then_exit_1_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = write(dir.path(), "faq.jsonl", INVALID_JSONL);
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8").to_owned();

    let output = kefu(&["faq", "publish", &source, "--data-dir", &data_arg]);

    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).is_empty(), "no version printed");
    assert!(stderr(&output).contains("faq.jsonl:3: duplicate id"));
    if data.exists() {
        let blobs = EmbeddedStore::open(&data).expect("store").blobs();
        assert!(blobs.list("faq/").await.expect("list").is_empty());
    }
}

fn question(n: u32, text: &str, at: i64, best: Option<(&str, f32)>) -> Unanswered {
    Unanswered {
        message_id: MessageId::parse(&format!("m{n:031x}")).expect("id"),
        conversation_id: ConversationId::parse(&format!("c{n:031x}")).expect("id"),
        text: text.to_owned(),
        at,
        best: best.map(|(entry_id, confidence)| BestGuess {
            entry_id: entry_id.to_owned(),
            confidence,
        }),
        locale: None,
    }
}

#[tokio::test]
async fn given_recorded_questions_when_listed_then_clusters_by_count_and_a_skeleton_to_fill() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    // 2024-06-01T12:00:00Z and the days after it.
    let june_1 = 1_717_243_200_000;
    let day = 86_400_000;
    {
        let blobs = EmbeddedStore::open(&data).expect("store").blobs();
        let asked = [
            question(1, "支持花呗分期吗", june_1, None),
            question(2, "可以用花呗分期吗", june_1 + day, Some(("payment", 0.31))),
            question(3, "支持花呗分期吗？", june_1 + day, None),
            question(4, "Do you ship to Canada?", june_1 + 2 * day, None),
            question(5, "do you ship to canada", june_1 + 2 * day, None),
            question(6, "你们几点下班", june_1 + 2 * day, None),
        ];
        for item in &asked {
            unanswered::record(&blobs, item).await.expect("record");
        }
    }
    let skeleton = dir.path().join("todo.jsonl");
    let data_arg = data.to_str().expect("utf-8").to_owned();
    let skeleton_arg = skeleton.to_str().expect("utf-8").to_owned();

    let output = kefu(&[
        "faq",
        "unanswered",
        "--data-dir",
        &data_arg,
        "--min-count",
        "2",
        "--export",
        &skeleton_arg,
    ]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    let rows: Vec<&str> = text.lines().filter(|l| l.contains("  20")).collect();
    assert_eq!(rows.len(), 2, "two clusters asked twice or more: {text}");
    assert!(rows[0].trim_start().starts_with('3') && rows[0].contains("支持花呗分期吗"));
    assert!(rows[0].contains("payment (0.31)"), "{text}");
    assert!(rows[1].trim_start().starts_with('2') && rows[1].contains("Do you ship"));
    assert!(!text.contains("几点下班"), "below --min-count: {text}");
    assert!(
        text.contains("6 questions unanswered: 2 clusters asked at least 2 times"),
        "{text}"
    );
    assert!(
        text.contains("empty answer fails"),
        "the hint says why: {text}"
    );

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&skeleton)
        .expect("skeleton")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "todo-1");
    assert_eq!(lines[0]["question"], "支持花呗分期吗");
    assert_eq!(lines[0]["similar"], serde_json::json!(["可以用花呗分期吗"]));
    assert_eq!(lines[0]["answer"], "");

    // The skeleton is rejected until ops write the answers.
    let check = kefu(&["faq", "check", &skeleton_arg]);
    assert_eq!(check.status.code(), Some(1));
    assert!(stdout(&check).contains("todo.jsonl:1: missing or empty \"answer\""));

    // An existing export is never overwritten.
    let again = kefu(&[
        "faq",
        "unanswered",
        "--data-dir",
        &data_arg,
        "--export",
        &skeleton_arg,
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&skeleton)
            .expect("skeleton")
            .lines()
            .count(),
        2
    );
}

#[tokio::test]
async fn given_since_when_listed_then_older_days_are_left_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let blobs = EmbeddedStore::open(&data).expect("store").blobs();
        let june_1 = 1_717_243_200_000;
        unanswered::record(&blobs, &question(1, "旧问题 积分怎么用", june_1, None))
            .await
            .expect("record");
        unanswered::record(
            &blobs,
            &question(2, "新问题 礼品卡怎么用", june_1 + 86_400_000, None),
        )
        .await
        .expect("record");
    }
    let data_arg = data.to_str().expect("utf-8").to_owned();

    let output = kefu(&[
        "faq",
        "unanswered",
        "--data-dir",
        &data_arg,
        "--since",
        "2024-06-02",
    ]);

    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{text}{}", stderr(&output));
    assert!(text.contains("礼品卡") && !text.contains("积分"), "{text}");
    assert!(
        text.contains("1 question unanswered since 2024-06-02: 1 cluster"),
        "{text}"
    );
}

#[test]
fn given_no_data_dir_when_listing_unanswered_then_exit_2_with_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nowhere");

    let output = kefu(&[
        "faq",
        "unanswered",
        "--data-dir",
        missing.to_str().expect("utf-8"),
    ]);

    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("--data-dir"),
        "{}",
        stderr(&output)
    );
    assert!(!missing.exists(), "reading never creates a store");
}
