//! Checkpoints of the embedded store's write-ahead log, off the writer's path.
//!
//! SQLite checkpoints by default in the connection that commits, once the log holds
//! 1,000 pages: that commit then also copies the log into the database file and syncs
//! it, and every caller in its batch waits for that too (measured: a burst of deletes,
//! whose index changes dirty hundreds of pages a batch, checkpointed on almost every
//! commit). Here the writer never checkpoints by itself (`wal_autocheckpoint = 0`); a
//! thread of its own copies the log on its own connection, in PASSIVE mode, which never
//! blocks the writer or a reader. Durability does not depend on it: a commit is durable
//! once the log is synced (`synchronous = FULL`).
//!
//! Copying is not enough to keep the log short: SQLite starts it again from the
//! beginning only when a write begins while every frame is copied and no reader still
//! reads from it, and under a steady stream of batches a passive copy never finishes
//! between two of them (measured: the log grew by 35-47 MB/s under edits or deletes).
//! So once it is long ([`LogWatch`]) the writer itself finishes the copy between two
//! batches ([`restart_log`]), when only the last few milliseconds of frames are left to
//! copy. (Before, this thread truncated a 256 MiB log with a checkpoint that took the
//! write lock while it waited for readers and copied the rest: the writer stood still
//! for seconds.)

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the thread looks for committed pages to copy while nothing is written.
const EVERY: Duration = Duration::from_millis(200);
/// How often while the log grows: the writer's own copy ([`restart_log`]) is left with
/// what was committed since the thread's last pass.
const EVERY_GROWING: Duration = Duration::from_millis(25);
/// A log this long (frames: 128 MiB of 4 KiB pages) is started again by the writer. At
/// the highest write rates measured (~47 MB/s of deletes) that is every 2-3 s, each
/// costing the writer a few milliseconds between two batches.
const RESTART_AT: i64 = 32_768;
/// How long the writer's restart waits for readers still reading old frames (searches
/// take milliseconds); a longer read (an export) makes it give up and try again later.
const READERS_WAIT: Duration = Duration::from_millis(10);
/// The writer's usual busy timeout (`SqliteStore::open`), restored after a restart.
const WRITER_BUSY: Duration = Duration::from_secs(10);

/// What the checkpoint thread saw of the log, for the writer.
#[derive(Default)]
pub struct LogWatch {
    long: AtomicBool,
    /// Held by whoever copies the log: the thread's pass and the writer's restart never
    /// overlap (a restart that met a pass waited out its busy timeout for nothing).
    copying: AtomicBool,
}

impl LogWatch {
    /// Whether the log should start again; answers once per long log seen by the thread
    /// (a restart that could not finish is tried again after the thread's next pass).
    pub fn take_long(&self) -> bool {
        self.long.swap(false, Ordering::SeqCst)
    }

    /// Asks for a restart after the next batch again (the thread was copying).
    pub fn still_long(&self) {
        self.long.store(true, Ordering::SeqCst);
    }

    /// The right to copy, unless the other side holds it.
    pub fn try_copy(&self) -> Option<Copying<'_>> {
        self.copying
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .ok()
            .map(|_| Copying(&self.copying))
    }
}

/// Held while copying the log (see `LogWatch::try_copy`).
pub struct Copying<'a>(&'a AtomicBool);

impl Drop for Copying<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Copies the rest of the log and waits briefly for readers still in it, on the
/// writer's connection between two batches, so that the next write starts the log
/// again from its beginning. Answers whether every frame was copied.
pub fn restart_log(c: &rusqlite::Connection) -> rusqlite::Result<bool> {
    c.busy_timeout(READERS_WAIT)?;
    let done = c.query_row("PRAGMA wal_checkpoint(RESTART)", [], |r| r.get::<_, i64>(0));
    c.busy_timeout(WRITER_BUSY)?;
    Ok(done? == 0)
}

/// Runs checkpoints until dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub watch: Arc<LogWatch>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Checkpointer {
        let (stop, stopped) = mpsc::channel::<()>();
        let path = path.to_path_buf();
        let watch = Arc::new(LogWatch::default());
        let seen = watch.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let conn = match open(&path) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "the checkpoint thread cannot open the database; the log grows until restart");
                        return;
                    }
                };
                let (mut pause, mut last) = (EVERY, 0);
                // Ends when the store drops its sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(pause) {
                    // The writer is starting the log again: nothing to copy.
                    let Some(_copying) = seen.try_copy() else {
                        pause = EVERY_GROWING;
                        continue;
                    };
                    pause = match checkpoint(&conn) {
                        Ok(frames) => {
                            seen.long.store(frames > RESTART_AT, Ordering::SeqCst);
                            // A log of another length: something was committed.
                            let growing = frames != last;
                            last = frames;
                            if growing { EVERY_GROWING } else { EVERY }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "write-ahead log checkpoint failed; retrying");
                            EVERY
                        }
                    };
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("the checkpoint thread could not start; the log grows until restart");
        }
        Checkpointer {
            stop: Some(stop),
            thread,
            watch,
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// Copies what no reader still needs; answers the log's length in frames.
fn checkpoint(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database in WAL mode whose writer, as the store's, never checkpoints.
    fn log_writer() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().unwrap();
        let writer = Connection::open(dir.path().join("t.db")).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (b BLOB);")
            .unwrap();
        (dir, writer)
    }

    #[test]
    fn a_restart_by_the_writer_starts_the_log_again() {
        let (dir, writer) = log_writer();
        let path = dir.path().join("t.db");
        // A reader that keeps reading between the writes, as searches do.
        let reader = open(&path).unwrap();
        let frames =
            |c: &Connection| -> i64 { c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).unwrap() };
        for _ in 0..64 {
            writer
                .execute("INSERT INTO t (b) VALUES (?)", [vec![7u8; 32 * 1024]])
                .unwrap();
            let _: i64 = reader.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        }
        let long = frames(&reader);
        assert!(long > 500, "the log holds every write: {long} frames");
        assert!(restart_log(&writer).unwrap(), "nothing kept the copy from finishing");
        writer.execute("INSERT INTO t (b) VALUES (?)", [vec![1u8; 10]]).unwrap();
        let after = frames(&reader);
        assert!(after < 10, "the next write started the log again: {after} frames");
        let n: i64 = reader.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 65);
    }

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer() {
        let (dir, writer) = log_writer();
        let path = dir.path().join("t.db");
        let checkpoints = Checkpointer::start(&path);
        for _ in 0..64 {
            writer
                .execute("INSERT INTO t (b) VALUES (?)", [vec![7u8; 32 * 1024]])
                .unwrap();
        }
        let db_size = || std::fs::metadata(&path).unwrap().len();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while db_size() < 2 * 1024 * 1024 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(db_size() >= 2 * 1024 * 1024, "not checkpointed: {} bytes", db_size());
        // Dropping it stops its thread (the join would hang otherwise).
        drop(checkpoints);
        let n: i64 = writer.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 64);
    }
}
