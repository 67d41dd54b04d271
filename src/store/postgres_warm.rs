//! Connections kept out of sqlx's pool between single statements.
//!
//! sqlx hands a connection back to its pool through a task it spawns, which pings the
//! server before the connection is idle again: every statement sent through the pool
//! costs a second round trip and a task on another runtime worker. Statements of the
//! search path take a connection from here instead and give it back directly once their
//! result says the connection is sound: at a million assets the client's CPU per search
//! fell by a fifth (top 20) to a quarter (a free-form word) on 2 cores.
//!
//! A connection whose statement was cancelled (its future dropped) or failed in a way
//! that may have broken it is dropped instead: sqlx's own return path then checks it.
//! Transactions never use these: a dropped transaction's rollback is sent by that path.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{PgConnection, PgPool, Postgres};

/// Connections kept at most: the rest of the pool stays free for writes.
const KEPT: usize = 4;
/// A connection unused this long goes back to the pool (whose acquire checks one that
/// sat idle: the server may have closed it).
const KEPT_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(super) struct WarmConns {
    idle: Mutex<Vec<(PoolConnection<Postgres>, Instant)>>,
}

impl WarmConns {
    /// A connection for one statement (or a few, none in a transaction): a kept one if
    /// any was used lately, else one from `pool`.
    pub(super) async fn take<'w>(&'w self, pool: &PgPool) -> Result<Warm<'w>, sqlx::Error> {
        let kept = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            // Stale ones are dropped (back to the pool) outside the lock.
            let stale: Vec<_> = match idle.iter().position(|(_, at)| at.elapsed() < KEPT_FOR) {
                Some(fresh) => idle.drain(..fresh).collect(),
                None => std::mem::take(&mut *idle),
            };
            let kept = idle.pop().map(|(c, _)| c);
            drop(idle);
            drop(stale);
            kept
        };
        let conn = match kept {
            Some(c) => c,
            None => pool.acquire().await?,
        };
        Ok(Warm {
            conn: Some(conn),
            home: self,
        })
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.idle.lock().unwrap().len()
    }
}

/// A connection taken from `WarmConns`; dropped without `done` (a cancelled statement)
/// it goes back through sqlx's pool.
pub(super) struct Warm<'w> {
    conn: Option<PoolConnection<Postgres>>,
    home: &'w WarmConns,
}

impl Warm<'_> {
    pub(super) fn conn(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("taken only by done")
    }

    /// Ends the connection's use with its statement's result: kept when the result
    /// shows a sound connection (rows, or an error the server answered with).
    pub(super) fn done<T>(mut self, result: Result<T, sqlx::Error>) -> Result<T, sqlx::Error> {
        let sound = match &result {
            Ok(_) => true,
            Err(e) => matches!(
                e,
                sqlx::Error::Database(_)
                    | sqlx::Error::RowNotFound
                    | sqlx::Error::ColumnNotFound(_)
                    | sqlx::Error::ColumnIndexOutOfBounds { .. }
                    | sqlx::Error::ColumnDecode { .. }
                    | sqlx::Error::TypeNotFound { .. }
            ),
        };
        if let (true, Some(conn)) = (sound, self.conn.take()) {
            let mut idle = self.home.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < KEPT {
                // Newest last: `take` reuses the most recently used (its server process
                // and plans are warm) and finds the stale ones at the front.
                idle.push((conn, Instant::now()));
            } else {
                drop(idle);
                drop(conn);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pool() -> Option<PgPool> {
        let url = crate::store::test_database_url()?;
        Some(PgPool::connect(&url).await.expect("the test database"))
    }

    #[tokio::test]
    async fn kept_after_success_and_server_errors_not_after_a_cancel() {
        let Some(pool) = pool().await else { return };
        let warm = WarmConns::default();
        let mut c = warm.take(&pool).await.unwrap();
        let one = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(c.conn()).await;
        assert_eq!(c.done(one).unwrap(), 1);
        assert_eq!(warm.kept(), 1);

        // The same connection again, and a server error keeps it (it is sound).
        let mut c = warm.take(&pool).await.unwrap();
        assert_eq!(warm.kept(), 0);
        let err = sqlx::query("SELECT * FROM no_such_table").execute(c.conn()).await;
        assert!(matches!(c.done(err), Err(sqlx::Error::Database(_))));
        assert_eq!(warm.kept(), 1);

        // A statement whose future is dropped half way: the connection is not kept...
        let mut c = warm.take(&pool).await.unwrap();
        {
            let slow = sqlx::query("SELECT pg_sleep(5)").execute(c.conn());
            let _ = tokio::time::timeout(Duration::from_millis(50), slow).await;
        }
        drop(c);
        assert_eq!(warm.kept(), 0);
        // ...and the next statement runs on a sound one.
        let mut c = warm.take(&pool).await.unwrap();
        let two = sqlx::query_scalar::<_, i32>("SELECT 2").fetch_one(c.conn()).await;
        assert_eq!(c.done(two).unwrap(), 2);
    }

    #[tokio::test]
    async fn keeps_at_most_a_few() {
        let Some(pool) = pool().await else { return };
        let warm = WarmConns::default();
        let mut taken = Vec::new();
        for _ in 0..KEPT + 2 {
            taken.push(warm.take(&pool).await.unwrap());
        }
        for mut c in taken {
            let ran = sqlx::query("SELECT 1").execute(c.conn()).await;
            c.done(ran).unwrap();
        }
        assert_eq!(warm.kept(), KEPT);
    }
}
