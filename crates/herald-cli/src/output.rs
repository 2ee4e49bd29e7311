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

/// Renders rows as an aligned table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == cells.len() {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
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
    use super::terminal_safe;

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
