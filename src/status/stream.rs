//! The reducer's reader: streams `status.events.jsonl` through a small reused
//! buffer and, for large files, parses two line-aligned halves on two threads.
//!
//! Why: on the reference machine, touching fresh memory costs about 0.6 ms per
//! MiB, so reading a 60 MiB log into one buffer costs ~40 ms before parsing
//! starts, while a 1 MiB reused buffer costs ~5 ms. Lines are parsed by the fast
//! scanner ([`super::scan`]) when it is sure and by the serde reader
//! ([`super::line`]) otherwise, into compact records ([`super::compact`]).
//! Errors carry line numbers relative to their half; the caller adds the line
//! count of the first half.

use std::io::{ErrorKind, Read as _, Seek as _, SeekFrom};
use std::path::Path;

use super::compact::Batch;
use super::event::{AnnotationEvent, StatusRecord};
use super::fold::Fold;
use super::line::{ParsedLine, parse_line};
use super::scan::{FastLine, ScanCache, fast_line};

/// Reads the whole log for the reducer: batches in file order and the
/// annotations. An error comes with the number of lines before its range.
pub(crate) fn read_for_reduce(
    path: &Path,
    tuning: ScanTuning,
) -> Result<(Vec<Batch>, Vec<AnnotationEvent>), (ScanError, usize)> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err((ScanError::Io(e), 0)),
    };
    let split = if len >= tuning.parallel_min_bytes {
        split_point(path, len).map_err(|e| (ScanError::Io(e), 0))?
    } else {
        None
    };
    let (first, second) = match split {
        None => (scan_range(path, 0, len, tuning.chunk_bytes), None),
        Some(mid) => std::thread::scope(|s| {
            let spawned = std::thread::Builder::new()
                .name("status-reader".into())
                .spawn_scoped(s, || scan_range(path, mid, len, tuning.chunk_bytes));
            match spawned {
                Ok(second) => {
                    let first = scan_range(path, 0, mid, tuning.chunk_bytes);
                    let second = match second.join() {
                        Ok(result) => result,
                        Err(panic) => std::panic::resume_unwind(panic),
                    };
                    (first, Some(second))
                }
                // No thread to be had: read the whole file here.
                Err(_) => (scan_range(path, 0, len, tuning.chunk_bytes), None),
            }
        }),
    };
    let mut first = first.map_err(|e| (e, 0))?;
    let mut batches = Vec::with_capacity(2);
    batches.push(first.batch);
    if let Some(second) = second {
        let second = second.map_err(|e| (e, first.lines))?;
        first.annotations.extend(second.annotations);
        batches.push(second.batch);
    }
    Ok((batches, first.annotations))
}

/// The reducer's state of a log whose events are in sort order (the usual case: events are
/// appended in time order), folded line by line through one reused buffer, so peak memory
/// follows the number of work packages, not of events. `None` when anything is unusual (an
/// event out of order or repeated, a bad or torn line, a read error): the caller then reduces
/// the whole log, which also reports a bad line exactly as before.
pub(crate) fn fold_in_order(path: &Path, chunk_bytes: usize) -> Option<Fold> {
    let mut file = crate::repo::fence::open_read(path).ok()?;
    let mut fold = Fold::default();
    let mut cache = ScanCache::default();
    let mut buf = vec![0u8; chunk_bytes.max(1)];
    let mut filled = 0usize;
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read(&mut buf[filled..]).ok()?;
        filled += n;
        if let Some(last_nl) = buf[..filled].iter().rposition(|&b| b == b'\n') {
            let text = std::str::from_utf8(&buf[..last_nl]).ok()?;
            fold_lines(&mut fold, &mut cache, text)?;
            buf.copy_within(last_nl + 1..filled, 0);
            filled -= last_nl + 1;
        }
        if n == 0 {
            break;
        }
    }
    buf[..filled]
        .iter()
        .all(u8::is_ascii_whitespace)
        .then_some(fold)
}

/// [`fold_in_order`] of a log held in memory (`spec-kitty upgrade` reduces the log it is about
/// to write without writing it twice).
pub(crate) fn fold_in_order_bytes(bytes: &[u8]) -> Option<Fold> {
    let mut fold = Fold::default();
    let mut cache = ScanCache::default();
    let rest = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(end) => {
            fold_lines(
                &mut fold,
                &mut cache,
                std::str::from_utf8(&bytes[..end]).ok()?,
            )?;
            &bytes[end + 1..]
        }
        None => bytes,
    };
    rest.iter().all(u8::is_ascii_whitespace).then_some(fold)
}

/// Fold complete lines (`text` without its last newline) in order; `None` at anything unusual.
fn fold_lines(fold: &mut Fold, cache: &mut ScanCache, text: &str) -> Option<()> {
    for line in text.split('\n') {
        if line.trim().is_empty() {
            continue;
        }
        // The fast scanner when it is sure of the whole line, else the serde reader.
        let fast = fast_line(line, cache)
            .filter(|(_, used)| line[*used..].trim().is_empty())
            .map(|(item, _)| item);
        match fast {
            Some(FastLine::Lane(view)) => fold.apply_lane(&view.into_owned().ok()?).ok()?,
            Some(FastLine::Annotation(a)) => fold.apply_annotation(&a).ok()?,
            None => match super::line::parse_record(line).ok()? {
                StatusRecord::Lane(e) => fold.apply_lane(&e).ok()?,
                StatusRecord::Annotation(a) => fold.apply_annotation(&a).ok()?,
                StatusRecord::MissionLevel(_) => {}
            },
        }
    }
    Some(())
}

/// Sizes of the streaming reader (tests shrink them to exercise every seam).
#[derive(Clone, Copy)]
pub(crate) struct ScanTuning {
    /// Files at least this large are parsed on two threads.
    pub(crate) parallel_min_bytes: u64,
    /// Read buffer size (it grows for longer lines).
    pub(crate) chunk_bytes: usize,
}

impl ScanTuning {
    pub(crate) const DEFAULT: ScanTuning = ScanTuning {
        parallel_min_bytes: 4 << 20,
        chunk_bytes: 1 << 20,
    };
}

/// What one range of the file yielded.
struct RangeScan {
    cache: ScanCache,
    batch: Batch,
    annotations: Vec<AnnotationEvent>,
    /// Complete lines in the range.
    lines: usize,
}

/// A problem in one range; line numbers are relative to the range start.
pub(crate) enum ScanError {
    Io(std::io::Error),
    Torn { line: usize },
    Malformed { line: usize, reason: String },
}

/// First line start at or after the middle of the file, if there is one.
fn split_point(path: &Path, len: u64) -> std::io::Result<Option<u64>> {
    let mut file = crate::repo::fence::open_read(path)?;
    let mid = len / 2;
    file.seek(SeekFrom::Start(mid))?;
    let mut window = vec![0u8; 1 << 16];
    let mut offset = mid;
    while offset < len {
        let n = file.read(&mut window)?;
        if n == 0 {
            break;
        }
        if let Some(pos) = window[..n].iter().position(|&b| b == b'\n') {
            let split = offset + pos as u64 + 1;
            return Ok((split < len).then_some(split));
        }
        offset += n as u64;
    }
    Ok(None)
}

/// Parses the lines in `[start, end)`, which starts at a line start.
fn scan_range(
    path: &Path,
    start: u64,
    end: u64,
    chunk_bytes: usize,
) -> std::result::Result<RangeScan, ScanError> {
    let mut file = crate::repo::fence::open_read(path).map_err(ScanError::Io)?;
    file.seek(SeekFrom::Start(start)).map_err(ScanError::Io)?;
    let mut remaining = end - start;
    let mut out = RangeScan {
        cache: ScanCache::default(),
        batch: Batch::with_capacity((remaining / 400) as usize + 16),
        annotations: Vec::new(),
        lines: 0,
    };
    let mut buf = vec![0u8; chunk_bytes.max(1).min(remaining as usize + 1)];
    let mut filled = 0usize;
    loop {
        if filled == buf.len() {
            // A line longer than the buffer: grow it.
            buf.resize(buf.len() * 2, 0);
        }
        let want = (buf.len() - filled).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = if want == 0 {
            0
        } else {
            file.read(&mut buf[filled..filled + want])
                .map_err(ScanError::Io)?
        };
        filled += n;
        remaining -= n as u64;
        if let Some(last_nl) = buf[..filled].iter().rposition(|&b| b == b'\n') {
            scan_lines(&buf[..last_nl], &mut out)?;
            buf.copy_within(last_nl + 1..filled, 0);
            filled -= last_nl + 1;
        }
        if n == 0 || remaining == 0 {
            break;
        }
    }
    if !buf[..filled].iter().all(u8::is_ascii_whitespace) {
        return Err(ScanError::Torn {
            line: out.lines + 1,
        });
    }
    Ok(out)
}

/// Parses complete lines (`region` holds them without the final newline).
///
/// Ordinary lines are read by the fast scanner, which also finds where the
/// line ends; anything else is cut at the next newline and handed to the
/// serde reader, exactly as a plain split into lines would.
fn scan_lines(region: &[u8], out: &mut RangeScan) -> std::result::Result<(), ScanError> {
    let Ok(text) = std::str::from_utf8(region) else {
        // Rare: go line by line so an earlier bad line is reported first.
        for raw in region.split(|&b| b == b'\n') {
            out.lines += 1;
            let line = std::str::from_utf8(raw).map_err(|_| ScanError::Malformed {
                line: out.lines,
                reason: "not valid UTF-8".to_owned(),
            })?;
            scan_slow_line(line, out)?;
        }
        return Ok(());
    };
    let bytes = text.as_bytes();
    let mut start = 0usize;
    loop {
        out.lines += 1;
        let rest = &text[start..];
        let mut end = None;
        if let Some((item, used)) = fast_line(rest, &mut out.cache) {
            let mut q = start + used;
            while let Some(b' ' | b'\t' | b'\r') = bytes.get(q) {
                q += 1;
            }
            if q == bytes.len() || bytes[q] == b'\n' {
                match item {
                    FastLine::Lane(view) => out.batch.push_view(view),
                    FastLine::Annotation(a) => out.annotations.push(*a),
                }
                end = Some(q);
            }
        }
        let end = match end {
            Some(end) => end,
            None => {
                let end = rest.find('\n').map_or(bytes.len(), |k| start + k);
                scan_slow_line(&text[start..end], out)?;
                end
            }
        };
        if end >= bytes.len() {
            return Ok(());
        }
        start = end + 1;
    }
}

/// One line through the serde reader (blank lines are skipped).
fn scan_slow_line(line: &str, out: &mut RangeScan) -> std::result::Result<(), ScanError> {
    let line = line.trim();
    if line.is_empty() {
        return Ok(());
    }
    match parse_line(line).map_err(|reason| ScanError::Malformed {
        line: out.lines,
        reason,
    })? {
        ParsedLine::Lane(view) => out.batch.push_view(*view),
        ParsedLine::Annotation(a) => out.annotations.push(*a),
        ParsedLine::Other => {}
    }
    Ok(())
}
