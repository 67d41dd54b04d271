//! The in-flight blob journal: every blob a process starts writing is noted here until
//! the row that refers to it is committed (or the blob is deleted). A process killed in
//! between leaves its journal behind, unlocked; start-up recovery
//! (`ops::recovery`) reads it and removes each listed blob that no asset refers to,
//! with its staged (partial) files. Without it such blobs would be invisible garbage that
//! only a full `fsck --repair` scan finds.
//!
//! One file per process (`inflight-<pid>-<random>.journal`), held with an exclusive
//! advisory lock for the process's lifetime: a lock that can be taken means its owner is
//! gone, so several processes may share one directory. Lines are `+key` and `-key`;
//! writes are not fsynced: they outlive a killed process (the page cache does), and
//! after a power loss `fsck --repair` remains the backstop.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Past this size the file is rewritten with only the pending keys.
const COMPACT_BYTES: u64 = 1 << 20;
pub const PREFIX: &str = "inflight-";
pub const SUFFIX: &str = ".journal";

pub struct Journal {
    path: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    file: File,
    pending: HashSet<String>,
    written: u64,
}

impl Journal {
    /// Creates and locks this process's journal in `dir`.
    pub fn create(dir: &Path) -> std::io::Result<Journal> {
        use rand::Rng;
        std::fs::create_dir_all(dir)?;
        let r: u32 = rand::thread_rng().gen();
        let path = dir.join(format!("{PREFIX}{}-{r:08x}{SUFFIX}", std::process::id()));
        let file = OpenOptions::new().create_new(true).read(true).write(true).open(&path)?;
        file.try_lock().map_err(std::io::Error::other)?;
        Ok(Journal {
            path,
            inner: Mutex::new(Inner {
                file,
                pending: HashSet::new(),
                written: 0,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes that `key` is being written.
    pub fn add(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.pending.insert(key.to_string()) {
            inner.append('+', key);
        }
    }

    /// Notes that `key` is settled: referred to by a committed row, or deleted.
    pub fn settle(&self, key: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !inner.pending.remove(key) {
            return;
        }
        if inner.pending.is_empty() || inner.written > COMPACT_BYTES {
            inner.rewrite();
        } else {
            inner.append('-', key);
        }
    }

    /// The keys a journal file lists as being written and never settled.
    pub fn read_pending(file: &File) -> std::io::Result<Vec<String>> {
        let mut pending: Vec<String> = Vec::new();
        for line in BufReader::new(file).lines() {
            let line = line?;
            match line.split_at_checked(1) {
                Some(("+", key)) if !key.is_empty() => pending.push(key.to_string()),
                Some(("-", key)) => pending.retain(|k| k != key),
                // A torn last line (killed mid-write) is ignored.
                _ => {}
            }
        }
        Ok(pending)
    }
}

impl Inner {
    fn append(&mut self, op: char, key: &str) {
        let line = format!("{op}{key}\n");
        match self.file.write_all(line.as_bytes()) {
            Ok(()) => self.written += line.len() as u64,
            Err(e) => tracing::warn!(error = %e, "could not write the in-flight blob journal"),
        }
    }

    /// Replaces the file's content with the pending keys (empty when none).
    fn rewrite(&mut self) {
        let mut text = String::new();
        for k in &self.pending {
            text.push('+');
            text.push_str(k);
            text.push('\n');
        }
        let res = (|| {
            self.file.set_len(0)?;
            self.file.seek(SeekFrom::Start(0))?;
            self.file.write_all(text.as_bytes())
        })();
        match res {
            Ok(()) => self.written = text.len() as u64,
            Err(e) => tracing::warn!(error = %e, "could not compact the in-flight blob journal"),
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        // A clean stop with nothing in flight leaves nothing to recover.
        let inner = self.inner.get_mut().unwrap_or_else(|e| e.into_inner());
        if inner.pending.is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_keys_survive_and_settled_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::create(dir.path()).unwrap();
        j.add("originals/a");
        j.add("originals/b");
        j.settle("originals/a");
        j.add("renditions/c");
        let f = File::open(j.path()).unwrap();
        // Another handle cannot lock it while the owner lives.
        assert!(f.try_lock().is_err());
        let mut pending = Journal::read_pending(&f).unwrap();
        pending.sort();
        assert_eq!(pending, vec!["originals/b", "renditions/c"]);
        j.settle("originals/b");
        j.settle("renditions/c");
        // All settled: the file is emptied, and removed on a clean drop.
        assert!(Journal::read_pending(&File::open(j.path()).unwrap())
            .unwrap()
            .is_empty());
        let path = j.path().to_path_buf();
        drop(j);
        assert!(!path.exists());
    }

    #[test]
    fn a_torn_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.journal");
        std::fs::write(&p, "+originals/a\n-originals/a\n+originals/b\n+").unwrap();
        let pending = Journal::read_pending(&File::open(&p).unwrap()).unwrap();
        assert_eq!(pending, vec!["originals/b"]);
    }
}
