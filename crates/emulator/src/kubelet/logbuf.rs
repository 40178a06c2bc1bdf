//! A container instance's log: stdout and stderr lines interleaved as they arrive, each with
//! its arrival time (for `timestamps` and `sinceSeconds`), bounded to the last few MB like a
//! rotated CRI log, and observable for `follow`.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// One log line (with its newline when it had one).
#[derive(Debug, Clone)]
pub struct LogLine {
    /// When the kubelet read it.
    pub time: DateTime<Utc>,
    /// The bytes, newline included.
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Inner {
    lines: VecDeque<LogLine>,
    bytes: usize,
    /// Sequence number of `lines[0]`; sequence numbers never repeat.
    first_seq: u64,
    closed: bool,
}

/// See the module documentation.
#[derive(Debug)]
pub struct LogBuffer {
    inner: Mutex<Inner>,
    limit: usize,
    /// Bumped on every append and on close, so followers wake up.
    tick: watch::Sender<u64>,
}

/// What a reader gets: lines from a sequence number on, where to continue, and whether the
/// instance has ended (no more lines will come).
#[derive(Debug)]
pub struct Chunk {
    pub lines: Vec<LogLine>,
    pub next: u64,
    pub closed: bool,
}

impl LogBuffer {
    /// An empty log keeping at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        LogBuffer {
            inner: Mutex::new(Inner::default()),
            limit: limit.max(1024),
            tick: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the buffer inconsistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one line.
    pub fn push(&self, data: Vec<u8>) {
        {
            let mut g = self.lock();
            if g.closed {
                return;
            }
            g.bytes += data.len();
            g.lines.push_back(LogLine {
                time: Utc::now(),
                data,
            });
            while g.bytes > self.limit && g.lines.len() > 1 {
                if let Some(old) = g.lines.pop_front() {
                    g.bytes -= old.data.len();
                    g.first_seq += 1;
                }
            }
        }
        self.tick.send_modify(|t| *t += 1);
    }

    /// Marks the end of the instance's output.
    pub fn close(&self) {
        self.lock().closed = true;
        self.tick.send_modify(|t| *t += 1);
    }

    /// Whether the instance has ended.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Lines from sequence number `from` on (older ones may have been dropped).
    pub fn read_from(&self, from: u64) -> Chunk {
        let g = self.lock();
        let start = from.saturating_sub(g.first_seq) as usize;
        let lines: Vec<LogLine> = g.lines.iter().skip(start).cloned().collect();
        Chunk {
            next: g.first_seq + g.lines.len() as u64,
            lines,
            closed: g.closed,
        }
    }

    /// The whole retained log as text (for termination messages).
    pub fn text(&self) -> String {
        let g = self.lock();
        let bytes: Vec<u8> = g.lines.iter().flat_map(|l| l.data.clone()).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// A receiver that changes whenever the log does.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tick.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_lines_within_the_limit() {
        let b = LogBuffer::new(1024);
        for i in 0..100 {
            b.push(format!("{i:020}\n").into_bytes());
        }
        let c = b.read_from(0);
        assert_eq!(c.next, 100);
        assert!(c.lines.len() < 100);
        assert!(
            c.lines
                .last()
                .is_some_and(|l| l.data == b"00000000000000000099\n")
        );
        let later = b.read_from(98);
        assert_eq!(later.lines.len(), 2);
        b.close();
        assert!(b.read_from(100).closed);
    }
}
