//! Reading SMTP lines with a bound: a peer that never sends a line feed must not make us
//! buffer without end.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Line {
    /// A whole line, line feed included, is in the buffer.
    Complete,
    /// The line was longer than allowed; it was read to its end and thrown away.
    TooLong,
    /// The peer closed the connection (a partial last line is dropped).
    Eof,
}

/// Reads one line, up to and including its `\n`, into `buf` (cleared first). A line of more
/// than `max` bytes is consumed to its end but not kept.
pub(super) async fn read_line<R>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line>
where
    R: AsyncBufRead + Unpin,
{
    buf.clear();
    let mut too_long = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            buf.clear();
            return Ok(Line::Eof);
        }
        let (taken, done) = match available.iter().position(|&b| b == b'\n') {
            Some(end) => (end + 1, true),
            None => (available.len(), false),
        };
        if !too_long {
            if buf.len() + taken > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(&available[..taken]);
            }
        }
        reader.consume(taken);
        if done {
            return Ok(if too_long {
                Line::TooLong
            } else {
                Line::Complete
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn given_lines_when_read_then_each_ends_with_its_line_feed() {
        let mut input: &[u8] = b"EHLO a\r\nNOOP\nrest";
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut buf, 100).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"EHLO a\r\n");
        assert_eq!(
            read_line(&mut input, &mut buf, 100).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"NOOP\n");
        assert_eq!(
            read_line(&mut input, &mut buf, 100).await.unwrap(),
            Line::Eof
        );
    }

    #[tokio::test]
    async fn given_a_long_line_when_read_then_it_is_skipped_and_the_next_one_is_whole() {
        let mut input: &[u8] = b"0123456789\r\nok\r\n";
        let mut buf = Vec::new();
        assert_eq!(
            read_line(&mut input, &mut buf, 8).await.unwrap(),
            Line::TooLong
        );
        assert!(buf.is_empty());
        assert_eq!(
            read_line(&mut input, &mut buf, 8).await.unwrap(),
            Line::Complete
        );
        assert_eq!(buf, b"ok\r\n");
    }
}
