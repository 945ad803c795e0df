//! Where the tool writes: results to stdout, problems and errors to stderr.
//!
//! Commands write through `io::Write` handles rather than `println!`: a closed pipe
//! (`kefu … | head`) becomes an error that ends the command instead of a panic.

use kefu_bot::SourceErrors;
use std::io::{self, Write};
use std::path::Path;

/// Prints a failure and its causes on stderr.
pub fn error(error: &anyhow::Error) {
    let _ = writeln!(io::stderr().lock(), "error: {error:#}");
}

/// Prints every problem of a rejected source as `<path>:<line>: <message>` (the form editors
/// and CI annotate), then a count.
pub fn problems(out: &mut dyn Write, path: &Path, errors: &SourceErrors) -> io::Result<()> {
    for problem in &errors.problems {
        writeln!(
            out,
            "{}:{}: {}",
            path.display(),
            problem.line,
            problem.message
        )?;
    }
    let count = errors.problems.len();
    let noun = if count == 1 { "problem" } else { "problems" };
    writeln!(out, "{}: invalid, {count} {noun}", path.display())
}

/// What a build was calibrated on: how many labelled questions it had, and how many of
/// them name no entry of the FAQ.
pub fn calibrated_on(questions: usize, unknown: usize) -> String {
    let counted =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (questions, unknown) {
        (0, _) => "on the FAQ's paraphrases (cross-validation)".to_owned(),
        (n, 0) => format!(
            "on {}",
            counted(n, "labelled question", "labelled questions")
        ),
        (n, unknown) => format!(
            "on {} ({} no entry of the FAQ, so read as out of scope)",
            counted(n, "labelled question", "labelled questions"),
            counted(unknown, "names", "name")
        ),
    }
}

/// `1234567` → `1.2 MiB`, for sizes shown beside the exact byte count.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_calibration_counts_when_described_then_plain_words() {
        assert_eq!(
            calibrated_on(0, 0),
            "on the FAQ's paraphrases (cross-validation)"
        );
        assert_eq!(calibrated_on(1, 0), "on 1 labelled question");
        assert_eq!(
            calibrated_on(40, 2),
            "on 40 labelled questions (2 name no entry of the FAQ, so read as out of scope)"
        );
    }

    #[test]
    fn given_sizes_when_humanised_then_binary_units_with_one_decimal() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
