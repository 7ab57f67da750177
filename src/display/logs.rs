//! Logs and the live display share stderr. Every log line is written through
//! [`Stderr`]: while bars are drawn, the line is printed with the bars suspended
//! (cleared, the line written, the bars redrawn below it), so neither garbles the other.

use indicatif::MultiProgress;
use std::io::Write;
use std::sync::Mutex;

/// The bars on screen, if any.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

fn bars() -> std::sync::MutexGuard<'static, Option<MultiProgress>> {
    BARS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Routes log lines around `multi` until [`release`] is called.
pub fn attach(multi: &MultiProgress) {
    *bars() = Some(multi.clone());
}

/// Log lines go straight to stderr again.
pub fn release() {
    *bars() = None;
}

/// The tracing writer: one [`Line`] per event.
#[derive(Clone, Copy, Default)]
pub struct Stderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Stderr {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line(Vec::with_capacity(256))
    }
}

/// One log event, buffered and written whole when dropped.
pub struct Line(Vec<u8>);

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let write = || {
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(&self.0);
            let _ = stderr.flush();
        };
        // Clone out of the lock: drawing must not happen while holding it.
        let multi = bars().clone();
        match multi {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}
