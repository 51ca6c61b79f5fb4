//! Turning what the user named (files, directories, `-`) into the list of captures to read.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::capture::{FileSource, Timestamp};

/// One entry of the list of inputs, in reading order.
#[derive(Debug)]
pub enum Input {
    /// A file to read as a capture: named on the command line, whatever it holds (`-` is standard
    /// input), or found in a directory, starting or named like a capture.
    Capture(PathBuf),
    /// Something found in a directory that could not be listed or opened. It is reported in its
    /// place, as a named file that cannot be opened is: a capture credwatch cannot read must
    /// never pass for an all-clear.
    Unreadable(UnreadableInput),
}

impl Input {
    /// The path named or found, readable or not (to list what a run was given).
    pub fn path(&self) -> &Path {
        match self {
            Input::Capture(path) => path,
            Input::Unreadable(
                UnreadableInput::Directory { path, .. }
                | UnreadableInput::Open { path, .. }
                | UnreadableInput::Read { path, .. },
            ) => path,
        }
    }
}

/// A directory or file met while expanding a directory that could not be looked into.
#[derive(Debug, thiserror::Error)]
pub enum UnreadableInput {
    #[error("{path}: cannot list this directory: {error}")]
    Directory { path: PathBuf, error: std::io::Error },
    /// A file that could not be opened, or read to tell whether it is a capture.
    #[error("{path}: cannot open: {error}")]
    Open { path: PathBuf, error: std::io::Error },
    #[error("{path}: cannot read: {error}")]
    Read { path: PathBuf, error: std::io::Error },
}

/// The paths the user named give nothing to read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Only directories were named, and they hold no capture file (nor anything that could not
    /// be looked into): reporting "no credential" for them would read as an all-clear.
    #[error("nothing to read: no capture file (pcap, pcapng, or either gzip-compressed) in {0}")]
    NoCaptures(String),
}

/// Expands directories (recursively) into the capture files they hold, told apart by their first
/// bytes or, for a damaged one, by their names; then puts the captures in time order
/// (see `in_time_order`). Files named directly are kept whatever they hold, so that a wrong one
/// gives a clear error rather than silence; a directory without a
/// capture file is warned about, and an error when it leaves nothing to read. What a directory
/// holds that cannot be listed or opened is kept in its place, to be reported as the run reads.
pub fn expand_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    let mut empty_dirs = Vec::new();
    // One for every directory named: `read caps caps/sub` reads sub's captures once.
    let mut seen = Seen::default();
    for path in paths {
        if path.as_os_str() == "-" || !path.is_dir() {
            inputs.push(Input::Capture(path.clone()));
        } else {
            let before = inputs.len();
            seen.root = std::fs::canonicalize(path).ok();
            if let Ok(metadata) = std::fs::metadata(path) {
                if !seen.dirs.insert(identity(&metadata)) {
                    tracing::debug!(directory = %path.display(), "skipped: a directory already expanded");
                    continue;
                }
            }
            walk(path, &mut seen, &mut inputs);
            if inputs.len() == before {
                tracing::warn!(directory = %path.display(), "no capture file in this directory");
                empty_dirs.push(path.display().to_string());
            }
        }
    }
    if inputs.is_empty() {
        return Err(InputError::NoCaptures(empty_dirs.join(", ")));
    }
    Ok(in_time_order(inputs))
}

/// The inputs with the capture files in the order of their first packet's time, as mergecap
/// merges them: a login that spans two files of a rotated capture is only read whole when the
/// earlier file comes first, and neither names (`cap`, `cap1`, `cap10`, `cap2` from `tcpdump -C`,
/// sorted as text by a directory listing or a shell's glob) nor the order a user typed them in
/// say which that is. Standard input, FIFOs (which cannot be read twice), files without a packet
/// and what cannot be read keep their places; ties keep the order given.
fn in_time_order(inputs: Vec<Input>) -> Vec<Input> {
    let peekable = |input: &Input| matches!(input, Input::Capture(path) if path.as_os_str() != "-" && path.is_file());
    // One file has no order to find: it is not opened twice.
    if inputs.iter().filter(|input| peekable(input)).nth(1).is_none() {
        return inputs;
    }
    // The peeks say nothing in the logs (the run reads each file again, and says then what it has
    // to say), under one silent subscriber for them all: each one set up rebuilds every
    // callsite's interest.
    let named: Vec<(usize, Timestamp)> =
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            inputs
                .iter()
                .enumerate()
                .filter(|(_, input)| peekable(input))
                .filter_map(|(index, input)| first_packet_time(input.path()).map(|first| (index, first)))
                .collect()
        });
    let mut by_time = named.clone();
    by_time.sort_by_key(|&(index, first)| (first, index));
    if by_time == named {
        return inputs;
    }
    tracing::info!("reading the capture files in the order of their first packets' times");
    let mut slots: Vec<Option<Input>> = inputs.into_iter().map(Some).collect();
    let moved: Vec<Option<Input>> =
        by_time.iter().map(|&(index, _)| slots.get_mut(index).and_then(Option::take)).collect();
    for (&(index, _), input) in named.iter().zip(moved) {
        if let Some(slot) = slots.get_mut(index) {
            *slot = input;
        }
    }
    slots.into_iter().flatten().collect()
}

/// The time of a capture file's first packet.
fn first_packet_time(path: &Path) -> Option<Timestamp> {
    let mut source = FileSource::open(path).ok()?;
    source.next_frame().ok().flatten().map(|frame| frame.ts)
}

/// The files and directories the expansion of the named directories has met, by identity
/// (device and inode), so that none is read twice: a `latest.pcap` link beside the capture it
/// names would double its alerts, and a link or bind mount can make a loop.
#[derive(Default)]
struct Seen {
    files: HashSet<(u64, u64)>,
    dirs: HashSet<(u64, u64)>,
    /// The named directory being expanded, resolved: a link leading to it or above it
    /// (`up -> ..`) is not followed, since it would read what was not named.
    root: Option<PathBuf>,
}

fn identity(metadata: &std::fs::Metadata) -> (u64, u64) {
    (metadata.dev(), metadata.ino())
}

/// Expands `dir` as `find -L` would, each directory and file once (`self -> .` would loop), but
/// for links leading back up to the named directory or above it (`up -> ..` would read what
/// was not named), and opening only regular files (a FIFO would wait for a writer, forever).
fn walk(dir: &Path, seen: &mut Seen, inputs: &mut Vec<Input>) {
    let unlistable = |error| Input::Unreadable(UnreadableInput::Directory { path: dir.to_path_buf(), error });
    let listing = match std::fs::read_dir(dir) {
        Ok(listing) => listing,
        Err(error) => return inputs.push(unlistable(error)),
    };
    let mut entries = Vec::new();
    for entry in listing {
        match entry {
            Ok(entry) => entries.push((entry.path(), entry.file_type().is_ok_and(|kind| kind.is_symlink()))),
            // What was listed before is still read.
            Err(error) => {
                inputs.push(unlistable(error));
                break;
            }
        }
    }
    entries.sort();
    for (path, is_link) in entries {
        let metadata = match std::fs::metadata(&path) {
            Ok(metadata) => metadata,
            // Gone since the listing (rotated away), or a link to nothing: no capture to miss.
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(path = %path.display(), "skipped: no longer there, or a link to nothing");
                continue;
            }
            Err(error) => {
                inputs.push(Input::Unreadable(UnreadableInput::Open { path, error }));
                continue;
            }
        };
        if metadata.is_dir() {
            match is_link.then(|| leads_up(&path, seen.root.as_deref())) {
                Some(Err(error)) => inputs.push(Input::Unreadable(UnreadableInput::Open { path, error })),
                Some(Ok(true)) => {
                    tracing::debug!(path = %path.display(), "skipped: a link to the named directory or above it");
                }
                _ if seen.dirs.insert(identity(&metadata)) => walk(&path, seen, inputs),
                _ => tracing::debug!(path = %path.display(), "skipped: a directory already expanded"),
            }
        } else if !metadata.is_file() {
            tracing::debug!(path = %path.display(), "skipped: not a regular file (FIFO, socket or device)");
        } else if !seen.files.insert(identity(&metadata)) {
            tracing::debug!(path = %path.display(), "skipped: the same file as one already kept");
        } else {
            match starts_like_a_capture(&path) {
                Ok(true) => inputs.push(Input::Capture(path)),
                // Damaged, empty, or compressed in a format not read here: reading it says which,
                // in its place, as for a file named on the command line. Silence would let a
                // capture credwatch cannot read pass for an all-clear.
                Ok(false) if named_like_a_capture(&path) => inputs.push(Input::Capture(path)),
                Ok(false) => tracing::debug!(path = %path.display(), "skipped: not a capture file"),
                Err(error) => inputs.push(Input::Unreadable(error)),
            }
        }
    }
}

/// Whether the directory a link at `path` leads to holds the named directory `root`; a link that
/// cannot be resolved is an error, reported in its place (it may hide captures).
fn leads_up(path: &Path, root: Option<&Path>) -> std::io::Result<bool> {
    let target = std::fs::canonicalize(path)?;
    // The named directory unresolved, its ancestors are unknown: links are followed, each
    // directory still once.
    Ok(root.is_some_and(|root| root.starts_with(target)))
}

/// Whether a file's name says it is a capture: `.pcap`, `.pcapng`, `.cap` or `.ntar`, with the
/// number `tcpdump -C` appends (`dump.pcap12`) or a rotation's (`x.pcap.1`), compressed or not
/// (`.gz`, `.bz2`, `.xz`, `.zst`, `.lz4`), in any case.
fn named_like_a_capture(path: &Path) -> bool {
    const CAPTURES: [&str; 4] = ["pcap", "pcapng", "cap", "ntar"];
    const COMPRESSIONS: [&str; 5] = ["gz", "bz2", "xz", "zst", "lz4"];
    let Some(name) = path.file_name().and_then(|name| name.to_str()) else { return false };
    let name = name.to_ascii_lowercase();
    let mut parts: Vec<&str> = name.split('.').skip(1).collect();
    if parts.last().is_some_and(|last| COMPRESSIONS.contains(last)) {
        parts.pop();
    }
    if parts.last().is_some_and(|last| !last.is_empty() && last.bytes().all(|byte| byte.is_ascii_digit())) {
        parts.pop();
    }
    parts.last().is_some_and(|last| CAPTURES.contains(&last.trim_end_matches(|c: char| c.is_ascii_digit())))
}

/// Whether the file at `path` starts like a capture (see [`crate::capture::starts_like_a_capture`]).
fn starts_like_a_capture(path: &Path) -> Result<bool, UnreadableInput> {
    let file = std::fs::File::open(path).map_err(|error| UnreadableInput::Open { path: path.to_path_buf(), error })?;
    crate::capture::starts_like_a_capture(file)
        .map_err(|error| UnreadableInput::Read { path: path.to_path_buf(), error })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file named like a capture that does not start like one (damaged, empty, compressed in
    /// a format not read here) is kept, for the error reading it gives; other files are not.
    #[test]
    fn files_named_like_captures_are_kept_whatever_they_start_with() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a-damaged.pcap"), b"\0\0\0\0 not a header").unwrap();
        std::fs::write(dir.path().join("b.pcap.zst"), [0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap();
        std::fs::write(dir.path().join("c-empty.PCAPNG"), b"").unwrap();
        std::fs::write(dir.path().join("d.tar.xz"), [0xfd, b'7', b'z', b'X', b'Z', 0]).unwrap();
        // As tcpdump -C -z names them, and as a rotation does.
        std::fs::write(dir.path().join("dump.pcap12.zst"), [0x28, 0xb5, 0x2f, 0xfd, 0, 0]).unwrap();
        std::fs::write(dir.path().join("e.pcap.1"), b"\0\0").unwrap();
        std::fs::write(dir.path().join("notes.pcapx"), b"hello").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();
        let inputs = expand_inputs(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = inputs.iter().map(|input| input.path().file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["a-damaged.pcap", "b.pcap.zst", "c-empty.PCAPNG", "dump.pcap12.zst", "e.pcap.1"]);
    }

    /// Files in the order of their first packets; standard input and a file without a packet
    /// keep their places.
    #[test]
    fn captures_are_read_in_the_order_of_their_first_packets() {
        let dir = tempfile::tempdir().unwrap();
        let capture = |name: &str, second: u64| {
            let mut conversation = crate::pcapwriter::Conversation::new(([10, 0, 0, 1], 40_000), ([10, 0, 0, 2], 110));
            conversation.start_at(Timestamp::from_secs_nanos(1_700_000_000 + second, 0)).handshake();
            let path = dir.path().join(name);
            crate::pcapwriter::write_pcap_file(&path, &conversation.frames().unwrap()).unwrap();
            path
        };
        let (late, early, middle) = (capture("late", 30), capture("early", 10), capture("middle", 20));
        let empty = dir.path().join("empty");
        crate::pcapwriter::write_pcap_file(&empty, &[]).unwrap();
        let named = [late.clone(), PathBuf::from("-"), empty.clone(), early.clone(), middle.clone()];
        let inputs = expand_inputs(&named).unwrap();
        let order: Vec<&Path> = inputs.iter().map(Input::path).collect();
        assert_eq!(order, [early.as_path(), Path::new("-"), empty.as_path(), middle.as_path(), late.as_path()]);
    }

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
        let names: Vec<_> = files.iter().map(|f| f.path().strip_prefix(dir.path()).unwrap().to_path_buf()).collect();
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
        let inputs = expand_inputs(&[empty, named.clone()]).unwrap();
        assert!(matches!(&inputs[..], [Input::Capture(path)] if *path == named), "{inputs:?}");
    }

    /// Expands `dir` on another thread, failing the test if it takes more than a few seconds.
    fn expand_within_seconds(dir: &Path) -> Vec<Input> {
        let (done, result) = std::sync::mpsc::channel();
        let named = [dir.to_path_buf()];
        std::thread::spawn(move || done.send(expand_inputs(&named)));
        result.recv_timeout(std::time::Duration::from_secs(5)).expect("the expansion hung").unwrap()
    }

    fn relative(inputs: &[Input], dir: &Path) -> Vec<String> {
        inputs.iter().map(|input| input.path().strip_prefix(dir).unwrap().display().to_string()).collect()
    }

    /// Links to directories are followed, each directory once (`self -> .` read the same
    /// capture again and again), but never back up above the named directory (`up -> ..` never
    /// ended); a file reached twice (a rotation's `latest.pcap` link, a hard link) is read once
    /// under its first name, and what is not a regular file is never opened: a FIFO would wait
    /// for a writer forever.
    #[test]
    fn a_directory_expands_to_each_regular_file_and_directory_once() {
        use std::os::unix::fs::symlink;
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("captures");
        let sub = dir.join("sub");
        std::fs::create_dir_all(&sub).unwrap();
        let pcap = [0xd4, 0xc3, 0xb2, 0xa1, 0, 0];
        std::fs::write(dir.join("cap-0001.pcap"), pcap).unwrap();
        std::fs::write(sub.join("other.pcap"), pcap).unwrap();
        symlink("cap-0001.pcap", dir.join("latest.pcap")).unwrap();
        std::fs::hard_link(dir.join("cap-0001.pcap"), dir.join("hard.pcap")).unwrap();
        symlink("sub/other.pcap", dir.join("a-link.pcap")).unwrap();
        symlink(".", dir.join("self")).unwrap();
        symlink("..", dir.join("up")).unwrap();
        symlink("sub", dir.join("sub-link")).unwrap();
        symlink("gone.pcap", dir.join("dangling.pcap")).unwrap();
        let fifo = std::process::Command::new("mkfifo").arg(dir.join("fifo.pcap")).status().unwrap();
        assert!(fifo.success());
        let _socket = std::os::unix::net::UnixListener::bind(dir.join("socket.pcap")).unwrap();

        // A sibling directory reached by a link (a rotation's `today -> ../2026-12-01`) is read.
        let elsewhere = top.path().join("2026-12-01");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("day.pcap"), pcap).unwrap();
        symlink("../2026-12-01", dir.join("today")).unwrap();
        std::fs::write(top.path().join("not-named.pcap"), pcap).unwrap();

        let inputs = expand_within_seconds(&dir);
        assert_eq!(relative(&inputs, &dir), ["a-link.pcap", "cap-0001.pcap", "today/day.pcap"], "{inputs:?}");
    }

    /// A directory named twice, or inside another one named, is read once.
    #[test]
    fn directories_named_twice_or_nested_are_read_once() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("a.pcap"), [0xd4, 0xc3, 0xb2, 0xa1, 0, 0]).unwrap();
        for named in
            [vec![dir.path().to_path_buf(), sub.clone()], vec![sub.clone(), dir.path().to_path_buf(), sub.clone()]]
        {
            let inputs = expand_inputs(&named).unwrap();
            assert_eq!(inputs.len(), 1, "{named:?}: {inputs:?}");
        }
    }

    /// A link that cannot be followed (a loop) may hide a capture: it is reported, as a file that
    /// cannot be opened is, not skipped.
    #[test]
    fn a_link_that_cannot_be_followed_is_reported() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        symlink("b.pcap", dir.path().join("a.pcap")).unwrap();
        symlink("a.pcap", dir.path().join("b.pcap")).unwrap();
        let inputs = expand_within_seconds(dir.path());
        assert!(
            matches!(&inputs[..], [Input::Unreadable(UnreadableInput::Open { .. }), Input::Unreadable(_)]),
            "{inputs:?}"
        );
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    /// A gzip file found in a directory is kept when its data starts like a capture, as an
    /// uncompressed file is: `notes.txt.gz` is no capture. One whose data cannot be seen (a cut
    /// stream) is kept, for reading it to say what is wrong. Named, any file is read.
    #[test]
    fn a_gzip_file_in_a_directory_is_kept_when_its_data_starts_like_a_capture() {
        let dir = tempfile::tempdir().unwrap();
        let pcap = [0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
        std::fs::write(dir.path().join("capture.pcap.gz"), gzip(&pcap)).unwrap();
        std::fs::write(dir.path().join("capture.pcapng.gz"), gzip(&[0x0a, 0x0d, 0x0d, 0x0a, 0, 0])).unwrap();
        std::fs::write(dir.path().join("cut.pcap.gz"), &gzip(&pcap)[..12]).unwrap();
        std::fs::write(dir.path().join("notes.txt.gz"), gzip(b"PASS hunter2 is not a capture")).unwrap();
        std::fs::write(dir.path().join("short.gz"), gzip(&pcap[..3])).unwrap();
        std::fs::write(dir.path().join("empty.gz"), gzip(&[])).unwrap();
        let inputs = expand_within_seconds(dir.path());
        assert_eq!(relative(&inputs, dir.path()), ["capture.pcap.gz", "capture.pcapng.gz", "cut.pcap.gz"]);
        let named = dir.path().join("notes.txt.gz");
        let inputs = expand_inputs(std::slice::from_ref(&named)).unwrap();
        assert!(matches!(&inputs[..], [Input::Capture(path)] if *path == named), "{inputs:?}");
    }
}
