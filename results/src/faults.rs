//! Fault intervals from the nemesis events of a history.
//!
//! The harness records each nemesis action as an `invoke` and an `info`
//! (with `error` when it failed), `f` naming the action: `start-partition` /
//! `stop-partition`, `kill` / `restart`, `pause` / `resume`. A fault is in
//! effect from the invocation of its start to the completion of its stop:
//! both the start and the stop take time, and during that time some nodes may
//! already (or still) be faulty.

use checker::{EventType, History, Process};

/// A fault that was in effect for a while.
#[derive(Clone, Debug, PartialEq)]
pub struct Fault {
    /// `partition`, `kill`, `pause`, or the action's name when unknown.
    pub kind: String,
    /// What the nemesis said it did (`majorities-ring`, `node 1`…).
    pub description: String,
    /// Nanoseconds since the test started.
    pub start: u64,
    /// `None` when the history ends before the fault is healed.
    pub end: Option<u64>,
}

/// The fault kind an action starts or stops, if it is one of the pairs.
fn kind_of(f: &str) -> Option<(&'static str, bool)> {
    Some(match f {
        "start-partition" => ("partition", true),
        "stop-partition" => ("partition", false),
        "kill" => ("kill", true),
        "restart" => ("kill", false),
        "pause" => ("pause", true),
        "resume" => ("pause", false),
        _ => return None,
    })
}

/// The fault kinds in the order their colors are assigned, so a kind keeps
/// its color from plot to plot and run to run.
pub const KINDS: [&str; 3] = ["partition", "kill", "pause"];

/// Pairs starts with stops, first in first out per kind. A start whose
/// completion reports an error did not happen and is dropped; a stop with no
/// open fault is ignored.
pub fn intervals(history: &History) -> Vec<Fault> {
    // A failed start leaves a `None` slot, so indexes into it stay valid.
    let mut faults: Vec<Option<Fault>> = Vec::new();
    // Per kind, indexes into `faults` still open.
    let mut open: Vec<(&str, usize)> = Vec::new();
    // Start invocations waiting for their completion: (kind, index in faults).
    let mut starting: Vec<(&str, usize)> = Vec::new();
    for event in history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
    {
        let Some((kind, starts)) = kind_of(event.f.as_str()) else {
            continue;
        };
        let description = event.value.to_string().trim_matches('"').to_string();
        match (starts, event.kind) {
            (true, EventType::Invoke) => {
                starting.push((kind, faults.len()));
                faults.push(Some(Fault {
                    kind: kind.to_string(),
                    description,
                    start: event.time,
                    end: None,
                }));
            }
            (true, _) => {
                let Some(at) = starting.iter().position(|(k, _)| *k == kind) else {
                    // A completion without invocation: the start time is all we have.
                    open.push((kind, faults.len()));
                    faults.push(Some(Fault {
                        kind: kind.to_string(),
                        description,
                        start: event.time,
                        end: None,
                    }));
                    continue;
                };
                let (_, i) = starting.remove(at);
                if event.error.is_some() {
                    faults[i] = None;
                } else {
                    open.push((kind, i));
                }
            }
            (false, EventType::Invoke) => {}
            (false, _) => {
                if let Some(at) = open.iter().position(|(k, _)| *k == kind) {
                    let (_, i) = open.remove(at);
                    if let Some(fault) = &mut faults[i] {
                        fault.end = Some(event.time);
                    }
                }
            }
        }
    }
    faults.into_iter().flatten().collect()
}

/// Every nemesis event, for the report's timeline.
pub fn events(history: &History) -> impl Iterator<Item = &checker::Event> {
    history
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::Event;

    fn nemesis(h: &mut History, time: u64, kind: EventType, f: &str, error: Option<&str>) {
        h.push(Event {
            error: error.map(str::to_string),
            ..Event::nemesis(time, kind, f, "node 1")
        });
    }

    #[test]
    fn pairs_starts_and_stops_and_drops_failed_starts() {
        use EventType::{Info, Invoke};
        let mut h = History::new();
        nemesis(&mut h, 10, Invoke, "kill", None);
        nemesis(&mut h, 12, Info, "kill", None);
        nemesis(&mut h, 15, Invoke, "pause", None);
        nemesis(&mut h, 16, Info, "pause", Some("no such node"));
        nemesis(&mut h, 20, Invoke, "restart", None);
        nemesis(&mut h, 25, Info, "restart", None);
        nemesis(&mut h, 30, Invoke, "start-partition", None);
        nemesis(&mut h, 31, Info, "start-partition", None);
        let faults = intervals(&h);
        assert_eq!(faults.len(), 2, "{faults:?}");
        assert_eq!(
            (faults[0].kind.as_str(), faults[0].start, faults[0].end),
            ("kill", 10, Some(25))
        );
        assert_eq!(faults[0].description, "node 1");
        assert_eq!(
            (faults[1].kind.as_str(), faults[1].end),
            ("partition", None)
        );
    }
}
