//! The FAQ source format and its strict parser.
//!
//! A source is either JSON Lines (one entry per line) or CSV with a header row:
//!
//! ```text
//! {"id":"refund-time","question":"退款多久到账？","similar":["钱什么时候退回来"],"answer":"…"}
//! ```
//!
//! ```text
//! id,question,similar,answer,category,tags,locale,quick_replies
//! refund-time,退款多久到账？,钱什么时候退回来|退款要几天,…,after-sales,退款|时效,zh-CN,怎么退货
//! ```
//!
//! Answers may use `{{customer_name}}`-style variables and `[label](https://…)` links, and
//! offer `quick_replies` (see [`kefu_template`]); both are checked here.
//!
//! Parsing is all or nothing: every problem is collected with its line number, and a source
//! with any problem is rejected as a whole, so a half-valid FAQ is never published.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// One FAQ entry: a canonical question, its paraphrases and the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaqEntry {
    /// Stable id, unique within the source (reported with each answer).
    pub id: String,
    /// The canonical question.
    pub question: String,
    /// Other ways customers ask the same thing.
    #[serde(default)]
    pub similar: Vec<String>,
    /// The reply sent to the customer; may use variables and links (see [`kefu_template`]).
    pub answer: String,
    /// Follow-up questions offered as one-tap replies (buttons on the web).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<String>,
    /// Optional grouping for the console and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Optional free-form labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Optional locale of the entry, e.g. `zh-CN`, `en`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl FaqEntry {
    /// The question followed by its paraphrases: everything a customer message is matched
    /// against.
    pub fn paraphrases(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.question.as_str()).chain(self.similar.iter().map(String::as_str))
    }
}

/// How a source file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceFormat {
    /// One JSON object per line (`.jsonl`, `.json`).
    JsonLines,
    /// CSV with a header row; `similar` and `tags` separated by `|` (`.csv`).
    Csv,
}

impl SourceFormat {
    /// The format named by a key's or path's extension (case-insensitive), if known.
    pub fn from_key(key: &str) -> Option<Self> {
        let name = key.rsplit('/').next().unwrap_or(key);
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "jsonl" | "json" | "ndjson" => Some(Self::JsonLines),
            "csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// One problem found in a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceProblem {
    /// 1-based line of the source (for CSV, the line where the record starts).
    pub line: usize,
    /// What is wrong, in words an FAQ author understands.
    pub message: String,
}

/// Every problem found in a rejected source, in line order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceErrors {
    /// The problems; never empty.
    pub problems: Vec<SourceProblem>,
}

impl fmt::Display for SourceErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "line {}: {}", problem.line, problem.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceErrors {}

/// Parses a whole source strictly: either every entry is valid, or every problem is
/// reported with its line number.
pub fn parse_source(format: SourceFormat, bytes: &[u8]) -> Result<Vec<FaqEntry>, SourceErrors> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut problems = Vec::new();
    let rows = match format {
        SourceFormat::JsonLines => parse_json_lines(bytes, &mut problems),
        SourceFormat::Csv => parse_csv(bytes, &mut problems),
    };
    let entries = validate(rows, &mut problems);
    if problems.is_empty() && entries.is_empty() {
        problems.push(SourceProblem {
            line: 1,
            message: "the source has no entries".into(),
        });
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        problems.sort_by_key(|p| p.line);
        Err(SourceErrors { problems })
    }
}

fn problem(problems: &mut Vec<SourceProblem>, line: usize, message: impl Into<String>) {
    problems.push(SourceProblem {
        line,
        message: message.into(),
    });
}

fn parse_json_lines(bytes: &[u8], problems: &mut Vec<SourceProblem>) -> Vec<(usize, FaqEntry)> {
    let mut rows = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(text) = std::str::from_utf8(raw) else {
            problem(problems, line, "not valid UTF-8");
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<FaqEntry>(text) {
            Ok(entry) => rows.push((line, entry)),
            Err(e) => problem(problems, line, format!("malformed entry: {e}")),
        }
    }
    rows
}

/// CSV columns, by name.
const COLUMNS: [&str; 8] = [
    "id",
    "question",
    "similar",
    "answer",
    "category",
    "tags",
    "locale",
    "quick_replies",
];

fn parse_csv(bytes: &[u8], problems: &mut Vec<SourceProblem>) -> Vec<(usize, FaqEntry)> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(bytes);
    let header = match reader.byte_headers() {
        Ok(header) => header.clone(),
        Err(e) => {
            problem(problems, 1, format!("malformed header: {e}"));
            return Vec::new();
        }
    };
    let mut columns = Vec::with_capacity(header.len());
    for name in header.iter() {
        let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        if !COLUMNS.contains(&name.as_str()) {
            problem(
                problems,
                1,
                format!("unknown column {name:?} (known: {})", COLUMNS.join(", ")),
            );
        } else if columns.contains(&name) {
            problem(problems, 1, format!("column {name:?} appears twice"));
        }
        columns.push(name);
    }
    for required in ["id", "question", "answer"] {
        if !columns.iter().any(|c| c == required) {
            problem(problems, 1, format!("missing column {required:?}"));
        }
    }
    if !problems.is_empty() {
        return Vec::new();
    }

    let mut rows = Vec::new();
    for record in reader.byte_records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line() as usize);
                problem(problems, line, format!("malformed CSV: {e}"));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record
            .iter()
            .all(|field| field.iter().all(u8::is_ascii_whitespace))
        {
            continue;
        }
        if record.len() != columns.len() {
            problem(
                problems,
                line,
                format!("{} fields, the header has {}", record.len(), columns.len()),
            );
            continue;
        }
        let mut fields = HashMap::new();
        let mut utf8 = true;
        for (name, value) in columns.iter().zip(record.iter()) {
            match std::str::from_utf8(value) {
                Ok(value) => {
                    fields.insert(name.as_str(), value.to_owned());
                }
                Err(_) => utf8 = false,
            }
        }
        if !utf8 {
            problem(problems, line, "not valid UTF-8");
            continue;
        }
        let mut take = |name: &str| fields.remove(name).unwrap_or_default();
        let optional = |value: String| Some(value).filter(|v| !v.trim().is_empty());
        let list = |value: String| {
            if value.trim().is_empty() {
                Vec::new()
            } else {
                value.split('|').map(str::to_owned).collect()
            }
        };
        let entry = FaqEntry {
            id: take("id"),
            question: take("question"),
            similar: list(take("similar")),
            answer: take("answer"),
            category: optional(take("category")),
            tags: list(take("tags")),
            locale: optional(take("locale")),
            quick_replies: list(take("quick_replies")),
        };
        rows.push((line, entry));
    }
    rows
}

/// Trims every field and checks the rules both formats share.
fn validate(rows: Vec<(usize, FaqEntry)>, problems: &mut Vec<SourceProblem>) -> Vec<FaqEntry> {
    let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
    let mut owner_of_paraphrase: HashMap<String, (String, usize)> = HashMap::new();
    let mut entries = Vec::with_capacity(rows.len());
    for (line, mut entry) in rows {
        let before = problems.len();
        trim(&mut entry);
        for (name, value) in [
            ("id", &entry.id),
            ("question", &entry.question),
            ("answer", &entry.answer),
        ] {
            if value.is_empty() {
                problem(problems, line, format!("missing or empty {name:?}"));
            }
        }
        if entry.similar.iter().any(String::is_empty) {
            problem(problems, line, "empty paraphrase in \"similar\"");
        }
        if entry.tags.iter().any(String::is_empty) {
            problem(problems, line, "empty tag in \"tags\"");
        }
        if let Err(why) = kefu_template::check_template(&entry.answer) {
            problem(problems, line, format!("answer: {why}"));
        }
        if let Err(why) = kefu_template::check_quick_replies(&entry.quick_replies) {
            problem(problems, line, format!("quick_replies: {why}"));
        }
        if !entry.id.is_empty() {
            if let Some(first) = first_line_of_id.get(&entry.id) {
                problem(
                    problems,
                    line,
                    format!("duplicate id {:?} (first on line {first})", entry.id),
                );
            } else {
                first_line_of_id.insert(entry.id.clone(), line);
            }
        }
        for paraphrase in entry.paraphrases().filter(|p| !p.is_empty()) {
            let key = crate::text::normalize(paraphrase);
            if key.is_empty() || crate::text::terms(paraphrase).is_empty() {
                problem(
                    problems,
                    line,
                    format!("{paraphrase:?} has no searchable words: it could never match"),
                );
                continue;
            }
            match owner_of_paraphrase.get(&key) {
                Some((owner, owner_line)) if *owner != entry.id => problem(
                    problems,
                    line,
                    format!(
                        "{paraphrase:?} is also a question of entry {owner:?} (line {owner_line}): \
                         customers asking it could get either answer"
                    ),
                ),
                Some(_) => {}
                None => {
                    owner_of_paraphrase.insert(key, (entry.id.clone(), line));
                }
            }
        }
        if problems.len() == before {
            entries.push(entry);
        }
    }
    entries
}

fn trim(entry: &mut FaqEntry) {
    let trim = |s: &mut String| {
        let trimmed = s.trim();
        if trimmed.len() != s.len() {
            *s = trimmed.to_owned();
        }
    };
    trim(&mut entry.id);
    trim(&mut entry.question);
    trim(&mut entry.answer);
    entry.similar.iter_mut().for_each(trim);
    entry.tags.iter_mut().for_each(trim);
    entry.quick_replies.iter_mut().for_each(trim);
    if let Some(category) = entry.category.as_mut() {
        trim(category);
    }
    if let Some(locale) = entry.locale.as_mut() {
        trim(locale);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(lines: &[&str]) -> Vec<u8> {
        lines.join("\n").into_bytes()
    }

    fn lines_of(errors: &SourceErrors) -> Vec<usize> {
        errors.problems.iter().map(|p| p.line).collect()
    }

    #[test]
    fn given_valid_jsonl_when_parsed_then_all_fields_are_read() {
        let source = jsonl(&[
            r#"{"id":"refund","question":"怎么退款？","similar":["钱怎么退"," 退款流程 "],"answer":"在订单页申请。","category":"after-sales","tags":["退款"],"locale":"zh-CN"}"#,
            "",
            r#"{"id":"hours","question":"When are you open?","answer":"9am-6pm."}"#,
        ]);
        let entries = parse_source(SourceFormat::JsonLines, &source).expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].similar, vec!["钱怎么退", "退款流程"]);
        assert_eq!(entries[0].category.as_deref(), Some("after-sales"));
        assert_eq!(entries[0].tags, vec!["退款"]);
        assert_eq!(entries[1].similar, Vec::<String>::new());
        assert_eq!(entries[1].locale, None);
        assert_eq!(
            entries[0].paraphrases().collect::<Vec<_>>(),
            vec!["怎么退款？", "钱怎么退", "退款流程"]
        );
    }

    #[test]
    fn given_many_problems_when_parsed_then_every_one_is_reported_with_its_line() {
        let source = jsonl(&[
            r#"{"id":"a","question":"退货","answer":"x"}"#,
            r#"{"id":"b","question":"换货","answer":"x""#,
            r#"{"id":"","question":"发票","answer":"x"}"#,
            r#"{"id":"c","question":"  ","answer":"x"}"#,
            r#"{"id":"d","question":"积分","answer":""}"#,
            r#"{"id":"a","question":"优惠券","answer":"x"}"#,
            r#"{"id":"e","question":"运费","answer":"x","colour":"red"}"#,
            r#"{"id":"f","answer":"x"}"#,
        ]);
        let errors = parse_source(SourceFormat::JsonLines, &source).expect_err("invalid");
        assert_eq!(lines_of(&errors), vec![2, 3, 4, 5, 6, 7, 8]);
        let report = errors.to_string();
        assert_eq!(report.lines().count(), 7, "{report}");
        assert!(
            report.contains("line 6: duplicate id \"a\" (first on line 1)"),
            "{report}"
        );
        assert!(
            report.contains("line 7:") && report.contains("colour"),
            "{report}"
        );
        assert!(
            report.contains("line 8:") && report.contains("question"),
            "{report}"
        );
    }

    #[test]
    fn given_bad_variables_or_quick_replies_when_parsed_then_their_lines_are_reported() {
        let source = jsonl(&[
            r#"{"id":"a","question":"你好","answer":"{{customer_name|您}}好！见[帮助](https://s.example/h)","quick_replies":["怎么退货"]}"#,
            r#"{"id":"b","question":"运费","answer":"{{order_total}} 元"}"#,
            r#"{"id":"c","question":"发票","answer":"x","quick_replies":[""]}"#,
            r#"{"id":"d","question":"积分","answer":"{{customer_name"}"#,
        ]);
        let errors = parse_source(SourceFormat::JsonLines, &source).expect_err("invalid");
        assert_eq!(lines_of(&errors), vec![2, 3, 4]);
        let report = errors.to_string();
        assert!(
            report.contains("unknown variable {{order_total}}"),
            "{report}"
        );
        assert!(report.contains("line 3: quick_replies: empty"), "{report}");
    }

    #[test]
    fn given_non_utf8_line_when_parsed_then_that_line_is_reported() {
        let mut source = br#"{"id":"a","question":"hi","answer":"x"}"#.to_vec();
        source.extend_from_slice(b"\n{\"id\":\"b\",\"question\":\"\xff\xfe\",\"answer\":\"x\"}\n");
        let errors = parse_source(SourceFormat::JsonLines, &source).expect_err("invalid");
        assert_eq!(lines_of(&errors), vec![2]);
        assert!(errors.to_string().contains("UTF-8"));
    }

    #[test]
    fn given_empty_source_when_parsed_then_it_is_rejected() {
        let errors = parse_source(SourceFormat::JsonLines, b"\n\n").expect_err("empty");
        assert!(errors.to_string().contains("no entries"));
    }

    #[test]
    fn given_same_paraphrase_in_two_entries_when_parsed_then_it_is_rejected() {
        let source = jsonl(&[
            r#"{"id":"a","question":"怎么退货","answer":"x"}"#,
            r#"{"id":"b","question":"换货","similar":["怎么退货？"],"answer":"y"}"#,
        ]);
        let errors = parse_source(SourceFormat::JsonLines, &source).expect_err("ambiguous");
        assert_eq!(lines_of(&errors), vec![2]);
        assert!(errors.to_string().contains("entry \"a\""));
    }

    #[test]
    fn given_paraphrase_without_searchable_words_when_parsed_then_it_is_rejected() {
        let source = jsonl(&[r#"{"id":"a","question":"？？？","answer":"x"}"#]);
        let errors = parse_source(SourceFormat::JsonLines, &source).expect_err("dead");
        assert!(errors.to_string().contains("no searchable words"));
    }

    #[test]
    fn given_valid_csv_when_parsed_then_lists_are_split_on_bars() {
        let source = "\u{feff}id,question,similar,answer,category,tags,locale,quick_replies\n\
                      refund,怎么退款,钱怎么退|退款流程,\"在订单页申请，1-3天到账。\",after-sales,退款|售后,zh-CN,多久到账|运费谁出\n\
                      hours,When are you open?,,\"9am-6pm, Mon-Fri\",,,,\n";
        let entries = parse_source(SourceFormat::Csv, source.as_bytes()).expect("valid");
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].similar, vec!["钱怎么退", "退款流程"]);
        assert_eq!(entries[0].tags, vec!["退款", "售后"]);
        assert_eq!(entries[0].quick_replies, vec!["多久到账", "运费谁出"]);
        assert_eq!(entries[0].answer, "在订单页申请，1-3天到账。");
        assert_eq!(entries[1].answer, "9am-6pm, Mon-Fri");
        assert_eq!(entries[1].similar, Vec::<String>::new());
        assert_eq!(entries[1].category, None);
    }

    #[test]
    fn given_csv_with_bad_rows_when_parsed_then_each_row_is_reported_by_line() {
        let source = "id,question,answer\n\
                      a,退货,x\n\
                      b,换货\n\
                      ,发票,x\n\
                      a,积分,x\n";
        let errors = parse_source(SourceFormat::Csv, source.as_bytes()).expect_err("invalid");
        assert_eq!(lines_of(&errors), vec![3, 4, 5]);
    }

    #[test]
    fn given_csv_with_unknown_or_missing_columns_when_parsed_then_header_is_rejected() {
        let source = "id,question,colour\na,退货,red\n";
        let errors = parse_source(SourceFormat::Csv, source.as_bytes()).expect_err("invalid");
        let report = errors.to_string();
        assert!(report.contains("unknown column \"colour\""), "{report}");
        assert!(report.contains("missing column \"answer\""), "{report}");
        assert!(errors.problems.iter().all(|p| p.line == 1));
    }

    #[test]
    fn given_csv_with_non_utf8_field_when_parsed_then_that_line_is_reported() {
        let mut source = b"id,question,answer\na,q,x\nb,".to_vec();
        source.extend_from_slice(b"\xc3\x28,x\n");
        let errors = parse_source(SourceFormat::Csv, &source).expect_err("invalid");
        assert_eq!(lines_of(&errors), vec![3]);
    }

    #[test]
    fn given_keys_when_format_is_asked_then_extension_decides() {
        assert_eq!(
            SourceFormat::from_key("faq/source/faq.jsonl"),
            Some(SourceFormat::JsonLines)
        );
        assert_eq!(
            SourceFormat::from_key("faq/source/FAQ.JSON"),
            Some(SourceFormat::JsonLines)
        );
        assert_eq!(
            SourceFormat::from_key("faq/source/常见问题.csv"),
            Some(SourceFormat::Csv)
        );
        assert_eq!(SourceFormat::from_key("faq/source/faq.txt"), None);
        assert_eq!(SourceFormat::from_key("faq/source.d/faq"), None);
    }
}
