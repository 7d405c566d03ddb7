//! Recording the history: one thread owns the file, everyone else sends it
//! events through a channel.
//!
//! Order is what matters for linearizability: a worker records its
//! invocation *before* sending the request and its completion *after* the
//! answer, and the channel keeps the order of sends, so whenever a completion
//! precedes an invocation in the history it also did in real time. Events are
//! numbered in channel order; timestamps are taken by the sender and clamped
//! to never go backwards, so `time` is monotonic along `index`.
//!
//! The thread writes each batch it finds in the channel and flushes before
//! waiting again: if the harness dies, the file holds the history up to that
//! moment. The in-memory copy it returns at the end is what the checker gets.

use checker::{Event, EventType, Func, History, JsonlWriter, Process, Value};
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

/// A cheap, cloneable handle for recording events.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Event>,
    start: Instant,
}

/// The recording thread; [`finish`](Recording::finish) it once every
/// [`Recorder`] is dropped.
pub struct Recording {
    thread: JoinHandle<io::Result<History>>,
}

/// Starts recording into `path` (created or truncated). Time 0 is now.
pub fn start(path: &Path) -> io::Result<(Recorder, Recording)> {
    let file = File::create(path)?;
    let (tx, rx) = mpsc::channel::<Event>();
    let thread = std::thread::Builder::new()
        .name("recorder".into())
        .spawn(move || {
            record(
                rx,
                JsonlWriter::new(BufWriter::with_capacity(1 << 16, file)),
            )
        })?;
    let recorder = Recorder {
        tx,
        start: Instant::now(),
    };
    Ok((recorder, Recording { thread }))
}

fn record(rx: mpsc::Receiver<Event>, mut out: JsonlWriter<BufWriter<File>>) -> io::Result<History> {
    let mut history = History::new();
    let mut last_time = 0;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(mut event) = next {
            last_time = last_time.max(event.time);
            event.time = last_time;
            history.push(event);
            out.append(history.events.last().expect("just pushed"))?;
            next = rx.try_recv().ok();
        }
        out.flush()?;
    }
    out.flush()?;
    Ok(history)
}

impl Recording {
    /// Waits for the last events to be written and returns the history.
    pub fn finish(self) -> io::Result<History> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the recorder thread panicked")))
    }
}

impl Recorder {
    /// Nanoseconds since the test started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn record(
        &self,
        kind: EventType,
        process: Process,
        f: Func,
        key: Option<String>,
        value: Value,
        error: Option<String>,
    ) {
        let event = Event {
            index: 0, // numbered by the recording thread, in channel order
            time: self.now(),
            kind,
            process,
            f,
            key,
            value,
            error,
        };
        // The thread only stops once every sender is gone, unless writing
        // failed; `finish` reports that error.
        let _ = self.tx.send(event);
    }

    /// A nemesis event: `f` is e.g. `start-partition`, `value` says what.
    pub fn nemesis(&self, kind: EventType, f: &str, what: String, error: Option<String>) {
        self.record(
            kind,
            Process::Nemesis,
            Func::Other(f.into()),
            None,
            Value::Str(what),
            error,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_on_disk_matches_memory_and_is_ordered() {
        let dir = std::env::temp_dir().join(format!("splitbrain-rec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("history.jsonl");
        let (recorder, recording) = start(&path).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|p| {
                let r = recorder.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        let key = Some(format!("k{i}"));
                        r.record(
                            EventType::Invoke,
                            Process::Client(p),
                            Func::Read,
                            key.clone(),
                            Value::Nil,
                            None,
                        );
                        r.record(
                            EventType::Ok,
                            Process::Client(p),
                            Func::Read,
                            key,
                            Value::Int(i),
                            None,
                        );
                    }
                })
            })
            .collect();
        recorder.nemesis(EventType::Info, "kill", "node 1".into(), None);
        drop(recorder);
        threads.into_iter().for_each(|t| t.join().unwrap());
        let history = recording.finish().unwrap();
        assert_eq!(history.len(), 8001);
        assert!(history
            .events
            .windows(2)
            .all(|w| w[0].index + 1 == w[1].index && w[0].time <= w[1].time));
        assert_eq!(History::read_jsonl_file(&path).unwrap(), history);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
