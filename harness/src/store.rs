//! The run directory: `STORE/<test>/<timestamp>/`, with `STORE/latest` and
//! `STORE/<test>/latest` pointing at the newest run.
//!
//! It holds `history.jsonl` (written while the run goes), `test.json` (the
//! options and seed, enough to repeat the run), `results.json` (the checker's
//! report and the run's statistics) and the nodes' files under `nodes/`.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a fresh directory for a run of `test` and points the `latest`
    /// links at it.
    pub fn create(store: &Path, test: &str) -> io::Result<RunDir> {
        let parent = store.join(test);
        std::fs::create_dir_all(&parent)?;
        let stamp = timestamp(SystemTime::now());
        // Runs started in the same second get a suffix rather than sharing a directory.
        let path = (0..)
            .map(|n| match n {
                0 => parent.join(&stamp),
                n => parent.join(format!("{stamp}-{n}")),
            })
            .find_map(|p| match std::fs::create_dir(&p) {
                Ok(()) => Some(Ok(p)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => None,
                Err(e) => Some(Err(e)),
            })
            .expect("some suffix is free")?;
        let name = path.file_name().expect("has a name");
        relink(&parent.join("latest"), Path::new(name))?;
        relink(&store.join("latest"), &Path::new(test).join(name))?;
        Ok(RunDir { path })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `value` as pretty JSON to `name` in the run directory.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        std::fs::write(self.file(name), text + "\n")
    }
}

/// Replaces the symlink `link` with one to `target` (relative, so the store
/// can be moved), atomically through a temporary name.
fn relink(link: &Path, target: &Path) -> io::Result<()> {
    let tmp = link.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link)
}

/// `20261122T201500Z`: UTC, sortable, safe in file names.
fn timestamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's days-to-civil algorithm.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc() {
        let at = |s| timestamp(UNIX_EPOCH + Duration::from_secs(s));
        assert_eq!(at(0), "19700101T000000Z");
        assert_eq!(at(951_782_400), "20000229T000000Z");
        assert_eq!(at(1_795_378_500), "20261122T201500Z");
    }

    #[test]
    fn runs_get_distinct_directories_and_latest_links() {
        let store = std::env::temp_dir().join(format!("splitbrain-store-{}", std::process::id()));
        let a = RunDir::create(&store, "t").unwrap();
        let b = RunDir::create(&store, "t").unwrap();
        assert_ne!(a.path, b.path);
        let latest = std::fs::canonicalize(store.join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        let latest = std::fs::canonicalize(store.join("t/latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        std::fs::remove_dir_all(&store).unwrap();
    }
}
