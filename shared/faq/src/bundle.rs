//! The bundle: one self-contained blob holding a whole FAQ index version.
//!
//! Layout (integers little-endian):
//!
//! ```text
//! magic "KEFU-FAQ" (8 bytes) | format u16 | analyzer u16
//! entries: u32 length, JSON array of FaqEntry
//! files:   u32 count, then per file: u16 name length, UTF-8 name, u64 length, bytes
//! model:   u64 length, the trained classifier and its calibration (format 2 on)
//! ```
//!
//! Lengths are checked against what is left, so a truncated or foreign blob is reported as
//! corrupt instead of being half-read.

use crate::{Error, Result};

/// First bytes of every bundle.
const MAGIC: &[u8; 8] = b"KEFU-FAQ";

/// Version of the layout above.
pub(crate) const FORMAT_VERSION: u16 = 2;

/// A decoded bundle, borrowing from the blob.
#[derive(Debug)]
pub(crate) struct Bundle<'a> {
    /// Version of the text analysis the index was built with.
    pub analyzer_version: u16,
    /// The entries as JSON.
    pub entries_json: &'a [u8],
    /// Index files: name and content.
    pub files: Vec<(&'a str, &'a [u8])>,
    /// The trained model.
    pub model: &'a [u8],
}

/// Writes a bundle.
pub(crate) fn encode(
    analyzer_version: u16,
    entries_json: &[u8],
    files: &[(String, Vec<u8>)],
    model: &[u8],
) -> Result<Vec<u8>> {
    let too_big = |what: &str| Error::Invalid(format!("FAQ bundle: {what} too large"));
    let size = 24
        + entries_json.len()
        + model.len()
        + files
            .iter()
            .map(|(name, bytes)| 10 + name.len() + bytes.len())
            .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&analyzer_version.to_le_bytes());
    let entries_len = u32::try_from(entries_json.len()).map_err(|_| too_big("entries"))?;
    out.extend_from_slice(&entries_len.to_le_bytes());
    out.extend_from_slice(entries_json);
    let count = u32::try_from(files.len()).map_err(|_| too_big("file list"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for (name, bytes) in files {
        let name_len = u16::try_from(name.len()).map_err(|_| too_big("file name"))?;
        out.extend_from_slice(&name_len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(&(model.len() as u64).to_le_bytes());
    out.extend_from_slice(model);
    Ok(out)
}

/// Reads a bundle written by [`encode`].
pub(crate) fn decode(blob: &[u8]) -> Result<Bundle<'_>> {
    let mut reader = Reader { rest: blob };
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(Error::Corrupt("not a FAQ index bundle".into()));
    }
    let format = reader.u16()?;
    // Format 1 had no model: such a bundle is read, and rebuilt by its loader.
    if format != FORMAT_VERSION && format != 1 {
        return Err(Error::Corrupt(format!(
            "FAQ bundle format {format} is not supported (expected {FORMAT_VERSION})"
        )));
    }
    let analyzer_version = reader.u16()?;
    let entries_len = reader.u32()? as usize;
    let entries_json = reader.take(entries_len)?;
    let count = reader.u32()?;
    let mut files = Vec::new();
    for _ in 0..count {
        let name_len = reader.u16()? as usize;
        let name = std::str::from_utf8(reader.take(name_len)?)
            .map_err(|_| Error::Corrupt("FAQ bundle: file name is not UTF-8".into()))?;
        let len = usize::try_from(reader.u64()?)
            .map_err(|_| Error::Corrupt("FAQ bundle: file too large".into()))?;
        files.push((name, reader.take(len)?));
    }
    let model = if format == 1 {
        &[][..]
    } else {
        let model_len = usize::try_from(reader.u64()?)
            .map_err(|_| Error::Corrupt("FAQ bundle: model too large".into()))?;
        reader.take(model_len)?
    };
    if !reader.rest.is_empty() {
        return Err(Error::Corrupt("FAQ bundle: trailing bytes".into()));
    }
    Ok(Bundle {
        analyzer_version,
        entries_json,
        files,
        model,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(Error::Corrupt("FAQ bundle is truncated".into()));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u16(&mut self) -> Result<u16> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let files = vec![
            ("meta.json".to_owned(), b"{}".to_vec()),
            ("abc.idx".to_owned(), vec![0, 1, 2, 255]),
        ];
        encode(7, br#"[{"id":"a"}]"#, &files, b"weights").expect("encode")
    }

    #[test]
    fn given_encoded_bundle_when_decoded_then_everything_comes_back() {
        let blob = sample();
        let bundle = decode(&blob).expect("decode");
        assert_eq!(bundle.analyzer_version, 7);
        assert_eq!(bundle.entries_json, br#"[{"id":"a"}]"#);
        assert_eq!(
            bundle.files,
            vec![
                ("meta.json", &b"{}"[..]),
                ("abc.idx", &[0u8, 1, 2, 255][..])
            ]
        );
        assert_eq!(bundle.model, b"weights");
    }

    #[test]
    fn given_truncated_bundle_when_decoded_then_it_is_corrupt() {
        let blob = sample();
        for cut in [0, 5, 12, 20, blob.len() - 1] {
            let result = decode(&blob[..cut]);
            assert!(matches!(result, Err(Error::Corrupt(_))), "cut at {cut}");
        }
    }

    #[test]
    fn given_foreign_or_future_blob_when_decoded_then_it_is_corrupt() {
        assert!(matches!(
            decode(b"PK\x03\x04 not a bundle"),
            Err(Error::Corrupt(_))
        ));
        let mut future = sample();
        future[8] = 99;
        let Err(Error::Corrupt(message)) = decode(&future) else {
            panic!("future format accepted");
        };
        assert!(message.contains("format 99"));
        let mut trailing = sample();
        trailing.push(0);
        assert!(matches!(decode(&trailing), Err(Error::Corrupt(_))));
    }
}
