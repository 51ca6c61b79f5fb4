//! Turning what the user named (files, directories, `-`) into the list of captures to read.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The paths the user named give nothing to read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A directory that cannot be listed. The message holds the cause, which is therefore not
    /// also its `source()` (a field named `source` would be): an error-chain printer would say it
    /// twice.
    #[error("{path}: {error}")]
    Unreadable { path: String, error: std::io::Error },
    /// Only directories were named, and they hold no capture file: reporting "no credential" for
    /// them would read as an all-clear.
    #[error("nothing to read: no capture file (pcap, pcapng, or either gzip-compressed) in {0}")]
    NoCaptures(String),
}

/// Expands directories (recursively, in sorted order) into the capture files they hold, told
/// apart by their first bytes, not their names. Files named directly are kept whatever they
/// hold, so that a wrong one gives a clear error rather than silence; a directory without a
/// capture file is warned about, and an error when it leaves nothing to read.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<PathBuf>, InputError> {
    let mut files = Vec::new();
    let mut empty_dirs = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" || !path.is_dir() {
            files.push(path.clone());
        } else {
            let before = files.len();
            walk(path, &mut files)?;
            if files.len() == before {
                tracing::warn!(directory = %path.display(), "no capture file in this directory");
                empty_dirs.push(path.display().to_string());
            }
        }
    }
    if files.is_empty() {
        return Err(InputError::NoCaptures(empty_dirs.join(", ")));
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), InputError> {
    let error = |error| InputError::Unreadable { path: dir.display().to_string(), error };
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

    #[test]
    fn directories_without_a_capture_are_an_error_only_when_nothing_is_left_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let (empty, notes) = (dir.path().join("empty"), dir.path().join("notes"));
        std::fs::create_dir(&empty).unwrap();
        std::fs::create_dir(&notes).unwrap();
        std::fs::write(notes.join("readme.txt"), b"not a capture").unwrap();
        let error = expand_inputs(&[empty.clone(), notes.clone()]).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, InputError::NoCaptures(_)), "{message}");
        assert!(
            message.contains(&*empty.to_string_lossy()) && message.contains(&*notes.to_string_lossy()),
            "{message}"
        );
        let named = dir.path().join("named.pcap");
        assert_eq!(expand_inputs(&[empty, named.clone()]).unwrap(), [named]);
    }
}
