//! Group commit for the embedded store. SQLite has one writer and, with
//! `synchronous = FULL`, one WAL fsync per commit: writes that queue while one commits
//! share the next transaction instead of paying an fsync each. Every write runs in its
//! own savepoint, so a write that fails leaves the others in its batch intact, and no
//! caller hears "ok" before the batch's COMMIT returned.
//!
//! The batches run in a task of their own: a caller that goes away (a client that hung
//! up) cannot cancel other callers' writes half way.

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use sqlx::{SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use super::{StoreError, StoreResult};

/// A write: runs on the writer connection inside the batch's transaction.
pub trait WriteFn<T>:
    for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}
impl<T, F> WriteFn<T> for F where
    F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static
{
}

/// Tells a caller its result once the batch's fate is known (`Err` = not committed).
type Deliver = Box<dyn FnOnce(Result<(), &str>) + Send>;
/// A type-erased write: whether it succeeded (its savepoint is kept) and its delivery.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Deliver)> + Send>;

/// Writes taken into one transaction at most: bounds a batch's time so the first
/// caller in it is not kept waiting behind hundreds of others.
const MAX_BATCH: usize = 64;

#[derive(Clone)]
pub struct GroupCommit {
    jobs: mpsc::UnboundedSender<Job>,
}

impl GroupCommit {
    /// Starts the writer task on `writer` (a pool of one connection).
    pub fn start(writer: SqlitePool) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_batches(writer, rx));
        GroupCommit { jobs }
    }

    /// Runs `f` in the next batch and answers once that batch committed.
    pub async fn write<T: Send + 'static>(&self, f: impl WriteFn<T>) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = f(conn).await;
                let ok = result.is_ok();
                let deliver: Deliver = Box::new(move |committed| {
                    let _ = tx.send(match committed {
                        Ok(()) => result,
                        Err(why) => Err(StoreError::NotCommitted(why.to_string())),
                    });
                });
                (ok, deliver)
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::NotCommitted("the store is shutting down".into()))?;
        rx.await
            .unwrap_or_else(|_| Err(StoreError::NotCommitted("the writer stopped before committing".into())))
    }
}

async fn run_batches(writer: SqlitePool, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Dropping a job unrun drops its sender: its caller hears "not committed".
        if let Err(e) = run_batch(&writer, batch).await {
            tracing::error!(error = %e, "a batch of writes could not start");
        }
    }
}

/// One statement on the batch's connection. Boxed: the batch future must be `Send` for
/// the writer task, which the compiler cannot prove through sqlx's executor bounds
/// unless each statement's future is an opaque `Send` box.
fn exec<'c>(conn: &'c mut SqliteConnection, sql: &'static str) -> BoxFuture<'c, Result<(), String>> {
    Box::pin(async move {
        sqlx::query(sql)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
}

fn run_batch<'a>(writer: &'a SqlitePool, batch: Vec<Job>) -> BoxFuture<'a, StoreResult<()>> {
    Box::pin(async move {
        let mut conn = writer.acquire().await?;
        exec(&mut conn, "BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::NotCommitted)?;
        let mut delivered: Vec<Deliver> = Vec::with_capacity(batch.len());
        let mut broken: Option<String> = None;
        for job in batch {
            if let Err(e) = exec(&mut conn, "SAVEPOINT w").await {
                broken = Some(e);
                break;
            }
            // A write that panics is a failed write, not a dead writer task.
            let ran = std::panic::AssertUnwindSafe(job(&mut conn)).catch_unwind().await;
            let ok = match ran {
                Ok((ok, deliver)) => {
                    delivered.push(deliver);
                    ok
                }
                Err(_) => {
                    tracing::error!("a write panicked; its savepoint is rolled back");
                    false
                }
            };
            let undone = if ok {
                Ok(())
            } else {
                exec(&mut conn, "ROLLBACK TO w").await
            };
            if let Err(e) = undone.and(exec(&mut conn, "RELEASE w").await) {
                broken = Some(e);
                break;
            }
        }
        let outcome = match broken {
            Some(why) => Err(why),
            None => exec(&mut conn, "COMMIT").await,
        };
        if outcome.is_err() {
            // The connection goes back to the pool: it must not keep a transaction open.
            let _ = exec(&mut conn, "ROLLBACK").await;
        }
        for deliver in delivered {
            deliver(outcome.as_ref().map(|_| ()).map_err(String::as_str));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_leaves_its_batch_intact() {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("t.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER NOT NULL UNIQUE)")
            .execute(&pool)
            .await
            .unwrap();
        let commits = GroupCommit::start(pool.clone());
        let mut tasks = Vec::new();
        for i in 0..200i64 {
            let commits = commits.clone();
            tasks.push(tokio::spawn(async move {
                commits
                    .write(move |c| {
                        Box::pin(async move {
                            assert!(i != 13, "a write that panics");
                            // 7 twice: the second breaks the UNIQUE rule after its first insert.
                            sqlx::query("INSERT INTO t (x) VALUES (?)")
                                .bind(1000 + i)
                                .execute(&mut *c)
                                .await?;
                            let x = if i == 150 { 7 } else { i };
                            sqlx::query("INSERT INTO t (x) VALUES (?)")
                                .bind(x)
                                .execute(&mut *c)
                                .await?;
                            Ok(i)
                        })
                    })
                    .await
            }));
        }
        let mut failed = Vec::new();
        for (i, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(v) => assert_eq!(v, i as i64),
                Err(_) => failed.push(i),
            }
        }
        // The panic, and whichever of 7 and 150 came second (the tasks race to the queue).
        assert_eq!(failed.len(), 2, "{failed:?}");
        assert!(failed.contains(&13), "{failed:?}");
        let dup = failed.iter().copied().find(|&i| i != 13).unwrap();
        assert!(dup == 7 || dup == 150, "{failed:?}");
        // The failed writes left nothing behind (not even their first insert); all others committed.
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 2 * 198);
        for gone in [1013, 1000 + dup as i64, 13] {
            let k: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE x = ?")
                .bind(gone)
                .fetch_one(&pool)
                .await
                .unwrap();
            assert_eq!(k, 0, "{gone} should have been rolled back");
        }
        // The writer task survived the panic.
        let after = commits.write(|_| Box::pin(async { Ok(1) })).await.unwrap();
        assert_eq!(after, 1);
    }
}
