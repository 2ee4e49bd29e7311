//! Reading events from files or standard input in bounded memory.
//!
//! `validate --jsonl` and `publish` stream their input: at most one line (capped at the
//! maximum event size) is held at a time, so a 2 GB input, or one endless line of
//! `/dev/zero`, costs no more memory than a small one. An over-long line is reported
//! with its number and skipped without being kept.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::Context;

/// One line of a JSON Lines input.
#[derive(Debug)]
pub enum Line {
    /// A non-blank line (without its line ending).
    Event {
        /// 1-based line number.
        number: usize,
        /// The line's bytes.
        bytes: Vec<u8>,
    },
    /// A line longer than the cap; its bytes were read and dropped.
    TooLong {
        /// 1-based line number.
        number: usize,
        /// Its length in bytes (as far as read).
        len: u64,
    },
}

/// Lines of a reader, each at most `cap` bytes kept; blank lines skipped.
pub struct Lines<R> {
    reader: BufReader<R>,
    cap: usize,
    number: usize,
}

impl<R: Read> Lines<R> {
    /// Lines of `reader`, keeping at most `cap` bytes of any one line.
    pub fn new(reader: R, cap: usize) -> Self {
        Lines {
            reader: BufReader::with_capacity(64 * 1024, reader),
            cap,
            number: 0,
        }
    }

    /// The next non-blank line, `None` at the end of the input.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let mut buf = Vec::new();
            let mut len = 0u64;
            let mut too_long = false;
            let mut any = false;
            loop {
                let chunk = self.reader.fill_buf()?;
                if chunk.is_empty() {
                    break;
                }
                any = true;
                let (take, end) = match chunk.iter().position(|b| *b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (chunk.len(), false),
                };
                let content = if end { take - 1 } else { take };
                len += content as u64;
                if !too_long {
                    if buf.len() + content > self.cap {
                        too_long = true;
                        buf = Vec::new();
                    } else {
                        buf.extend_from_slice(&chunk[..content]);
                    }
                }
                self.reader.consume(take);
                if end {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            self.number += 1;
            if too_long {
                return Ok(Some(Line::TooLong {
                    number: self.number,
                    len,
                }));
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(Line::Event {
                number: self.number,
                bytes: buf,
            }));
        }
    }
}

/// Opens `path` (`-` is standard input); returns its display name and a reader.
pub fn open(path: &Path) -> anyhow::Result<(String, Box<dyn Read + Send>)> {
    if path.as_os_str() == "-" {
        return Ok(("<stdin>".into(), Box::new(std::io::stdin())));
    }
    let name = path.display().to_string();
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {name}"))?;
    Ok((name, Box::new(f)))
}

/// Reads a whole single-event input, but never more than `cap + 1` bytes: enough to
/// tell that it is too large without holding a huge file.
pub fn read_capped(reader: impl Read, cap: usize, name: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    reader
        .take(cap as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {name}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_long_lines_are_reported_not_kept() {
        let input = b"{\"a\":1}\n\n   \nxxxxxxxxxxxx\n{\"b\":2}".to_vec();
        let mut l = Lines::new(&input[..], 8);
        match l.next_line().unwrap() {
            Some(Line::Event { number, bytes }) => {
                assert_eq!((number, bytes.as_slice()), (1, &b"{\"a\":1}"[..]))
            }
            other => panic!("{other:?}"),
        }
        match l.next_line().unwrap() {
            Some(Line::TooLong { number, len }) => assert_eq!((number, len), (4, 12)),
            other => panic!("{other:?}"),
        }
        match l.next_line().unwrap() {
            Some(Line::Event { number, bytes }) => {
                assert_eq!((number, bytes.as_slice()), (5, &b"{\"b\":2}"[..]))
            }
            other => panic!("{other:?}"),
        }
        assert!(l.next_line().unwrap().is_none());
    }
}
