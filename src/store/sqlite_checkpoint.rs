//! Checkpoints of the embedded store's write-ahead log, off the writer's path.
//!
//! SQLite checkpoints by default in the connection that commits, once the log holds
//! 1,000 pages: that commit then also copies the log into the database file and syncs
//! it, and every caller in its batch waits for that too (measured: a burst of deletes,
//! whose index changes dirty hundreds of pages a batch, checkpointed on almost every
//! commit). Here the writer never checkpoints (`wal_autocheckpoint = 0`); a thread of
//! its own does, on its own connection, in PASSIVE mode, which never blocks the writer
//! or a reader. Durability does not depend on it: a commit is durable once the log is
//! synced (`synchronous = FULL`).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How often the thread looks for committed pages to copy.
const EVERY: Duration = Duration::from_millis(200);
/// A log this long (pages; 256 MiB at 4 KiB) is truncated with a checkpoint that waits
/// for readers, so that a log that readers kept from resetting cannot grow without end.
const LONG_LOG: i64 = 65_536;

/// Runs checkpoints until dropped.
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Checkpointer {
        let (stop, stopped) = mpsc::channel::<()>();
        let path = path.to_path_buf();
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
                // Ends when the store drops its sender.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    if let Err(e) = checkpoint(&conn) {
                        tracing::warn!(error = %e, "write-ahead log checkpoint failed; retrying");
                    }
                }
            })
            .ok();
        if thread.is_none() {
            tracing::error!("the checkpoint thread could not start; the log grows until restart");
        }
        Checkpointer {
            stop: Some(stop),
            thread,
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

/// Copies what no reader still needs; truncates the log once it grew too long.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    let (_, log, _): (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    if log > LONG_LOG {
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; CREATE TABLE t (b BLOB);")
            .unwrap();
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
