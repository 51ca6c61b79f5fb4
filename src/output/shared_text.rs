//! A writer several owners share, its bytes read back as text: for tests that look at what a
//! sink wrote or what the code logged (a subscriber scoped to the test).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct SharedText(Arc<Mutex<Vec<u8>>>);

impl SharedText {
    /// Runs `run` with a subscriber writing here as the thread's default (threads that log where
    /// their creator does log here too); returns what `run` returned.
    pub fn logging<T>(&self, run: impl FnOnce() -> T) -> T {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, run)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)).into_owned()
    }
}

impl Write for SharedText {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
