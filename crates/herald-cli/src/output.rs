//! Printing: text for people (colored only on a terminal, never when
//! `NO_COLOR` is set) and JSON for machines.

use std::io::IsTerminal;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Readable lines and tables.
    Text,
    /// One JSON document on stdout.
    Json,
    /// Markdown, ready to paste into a pull request (`diff`, `changelog`; others print text).
    Markdown,
}

/// `s` made safe to print on a terminal: every control character (ESC, CR, BEL, NUL,
/// ...) from event data or headers is written as an escape (`\u{1b}`), so an event cannot
/// move the cursor, rewrite earlier lines or change the terminal's state. With
/// `keep_newlines`, LF and TAB are kept (pretty JSON payloads).
pub fn terminal_safe(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let keep = keep_newlines && (c == '\n' || c == '\t');
        if (c.is_control() && !keep)
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    out
}

/// ANSI colors when the stream is a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    color: bool,
}

impl Style {
    fn for_stream(is_tty: bool) -> Style {
        Style {
            color: is_tty && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    /// Style for standard output.
    pub fn stdout() -> Style {
        Style::for_stream(std::io::stdout().is_terminal())
    }

    /// Style for standard error.
    pub fn stderr() -> Style {
        Style::for_stream(std::io::stderr().is_terminal())
    }

    /// Whether this stream gets colours (a terminal, and no `NO_COLOR`).
    pub fn is_color(&self) -> bool {
        self.color
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Failures.
    pub fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }
    /// Success.
    pub fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }
    /// Warnings.
    #[allow(dead_code)]
    pub fn yellow(&self, s: &str) -> String {
        self.paint("33", s)
    }
    /// Headings.
    pub fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    crate::outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Renders rows as a table with a header: columns aligned by display width however
/// long a name, no borders, two spaces between columns, no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    render(header, rows, false)
}

/// [`table`], with the last column wrapped to the terminal's width when `wrap` and
/// stdout is a terminal (never cut: a pipe or `--wide` gets it whole on one line).
pub fn render(header: &[&str], rows: &[Vec<String>], wrap: bool) -> String {
    use comfy_table::{presets::NOTHING, CellAlignment, ContentArrangement, Table};
    let mut t = Table::new();
    t.load_style(NOTHING)
        .set_content_arrangement(if wrap {
            ContentArrangement::Dynamic
        } else {
            ContentArrangement::Disabled
        })
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row.iter().map(String::as_str));
    }
    for (i, column) in t.column_iter_mut().enumerate() {
        let last = i + 1 == header.len();
        column.set_padding((0, if last { 0 } else { 2 }));
        if !last {
            // Only the last column wraps; names and counts stay whole.
            column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
        }
        // Counts read best right-aligned, as `ls -l` has them.
        let numeric = |r: &Vec<String>| {
            r.get(i)
                .is_some_and(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        };
        if !rows.is_empty() && rows.iter().all(numeric) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = String::new();
    for line in t.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// How long ago an RFC 3339 time was, for people: `5s ago`, `3m 12s ago`, `2h 5m ago`,
/// `4d 1h ago`. An unparsable time is shown as it is.
pub fn ago(rfc3339: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(rfc3339) else {
        return terminal_safe(rfc3339, false);
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    let span = match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    };
    format!("{span} ago")
}

/// Writes to stdout; a closed pipe (`herald catalog | head`) ends the
/// process quietly instead of panicking.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(2);
    }
}

/// An error as one line: its causes joined by `: `, each left out when the line already
/// says it (many errors repeat their source in their own text). The NATS client's connect
/// error ends the line: herald's connection error before it names the reason already (the
/// client's chain would say "Connection refused" twice more), and the line ends with what
/// to try when no server answered.
pub fn error_line(error: &anyhow::Error) -> String {
    use async_nats::ConnectErrorKind;
    let mut line = String::new();
    for cause in error.chain() {
        if let Some(nats) = cause.downcast_ref::<async_nats::ConnectError>() {
            if line.is_empty() {
                line = nats.to_string();
            }
            if matches!(
                nats.kind(),
                ConnectErrorKind::Io | ConnectErrorKind::TimedOut
            ) {
                line.push_str(" (is nats-server running? pass --server URL)");
            }
            break;
        }
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    line.replace('\n', " ")
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::write_stdout(format_args!("\n")) };
    ($($t:tt)*) => { $crate::output::write_stdout(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => { $crate::output::write_stdout(format_args!($($t)*)) };
}

#[cfg(test)]
mod terminal_tests {
    use super::{ago, error_line, table, terminal_safe};

    #[test]
    fn an_error_line_says_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io)
            .context("reading a.json: no such file")
            .context("loading contracts");
        assert_eq!(
            error_line(&e),
            "loading contracts: reading a.json: no such file"
        );
    }

    #[test]
    fn tables_align_long_names_and_times_read_as_ages() {
        let t = table(
            &["CONSUMER", "PENDING", "LAST ACTIVE"],
            &[
                vec![
                    "billing-service--usage_metered_api_call".into(),
                    "7".into(),
                    "x".into(),
                ],
                vec!["a".into(), "12345".into(), "y".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], format!("{:<41}PENDING  LAST ACTIVE", "CONSUMER"));
        assert_eq!(
            lines[1],
            format!(
                "{:<41}      7  x",
                "billing-service--usage_metered_api_call"
            )
        );
        assert_eq!(lines[2], format!("{:<41}  12345  y", "a"));
        let past = (chrono::Utc::now() - chrono::Duration::seconds(3725)).to_rfc3339();
        assert_eq!(ago(&past), "1h 2m ago");
        assert_eq!(ago("not a time"), "not a time");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            terminal_safe("a\u{1b}[2Jb\r\nc\u{7}", false),
            "a\\u{1b}[2Jb\\u{d}\\u{a}c\\u{7}"
        );
        assert_eq!(terminal_safe("{\n\t\"a\": 1}", true), "{\n\t\"a\": 1}");
        assert_eq!(terminal_safe("x\u{202e}y", true), "x\\u{202e}y");
    }
}
