//! Turning what the user named (files, directories, `-`) into the list of captures to read.

use std::io::Read;
use std::path::{Path, PathBuf};

/// A path the user named that cannot be used at all.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct InputError {
    pub path: String,
    pub source: std::io::Error,
}

/// Expands directories (recursively, in sorted order) into the capture files they hold, told
/// apart by their first bytes, not their names. Files named directly are kept whatever they
/// hold, so that a wrong one gives a clear error rather than silence.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" || !path.is_dir() {
            files.push(path.clone());
        } else {
            walk(path, &mut files)?;
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let error = |source| InputError { path: dir.display().to_string(), source };
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(dir).map_err(error)?.filter_map(|entry| entry.ok().map(|e| e.path())).collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, files)?;
        } else if starts_like_a_capture(&entry) {
            files.push(entry);
        } else {
            tracing::debug!(path = %entry.display(), "skipped: not a capture file");
        }
    }
    Ok(())
}

/// pcap (either byte order, micro- or nanosecond), pcapng, or gzip.
fn starts_like_a_capture(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    let read = std::fs::File::open(path).and_then(|mut file| file.read_exact(&mut magic));
    read.is_ok()
        && matches!(
            magic,
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
                | [0x1f, 0x8b, _, _]
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_to_sorted_captures_only() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(dir.path().join("b.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 0, 0]).unwrap();
        std::fs::write(dir.path().join("a.dat"), [0x0a, 0x0d, 0x0d, 0x0a]).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        std::fs::write(sub.join("c.gz"), [0x1f, 0x8b, 8, 0]).unwrap();
        let named = dir.path().join("notes.txt");
        let files = expand_inputs(&[dir.path().to_path_buf(), named.clone()]).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
        assert_eq!(
            names,
            [PathBuf::from("a.dat"), PathBuf::from("b.pcap"), PathBuf::from("sub/c.gz"), PathBuf::from("notes.txt")]
        );
    }
}
